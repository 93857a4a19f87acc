-- Imports: external references of sites imported from spreadsheets.
-- The column itself (resorption.sites.external_ref, text UNIQUE, mirrored by sites_history)
-- exists since 030_sites.sql; the spreadsheet import (resorption.spreadsheets.load) matches a
-- row to its site by it when the row has no id. Say so where database users look.
COMMENT ON COLUMN resorption.sites.external_ref IS
    'Référence du site dans un autre système (import de tableur : une ligne sans identifiant met à jour le site de même référence).';
COMMENT ON COLUMN resorption.sites_history.external_ref IS
    'Référence externe du site, telle qu''elle était dans cette version.';
