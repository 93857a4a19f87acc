-- Exports: files produced by the export processes.
SELECT 1;
