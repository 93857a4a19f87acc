/* Résorption: the footprint map of an action's sheet and form (Leaflet, vendored; no inline
 * script: the CSP forbids them).
 *
 * The page gives <script type="application/json" id="action-map-data">
 *   {"mode": "view" | "edit", "geometry": GeoJSON geometry or null, "field": id of the hidden input,
 *    "root": the server's URL, "departements": codes whose outline helps to draw (the form)}
 * In "edit" mode the user draws polygons: a click adds a vertex, a double click (or a click on
 * the first vertex, or the « Fermer » button) closes the polygon; several polygons are allowed;
 * « Annuler » removes the last vertex (or the last polygon); a GeoJSON file (Feature,
 * FeatureCollection, Polygon or MultiPolygon, in WGS 84) is read in the browser. The hidden
 * field always holds the MultiPolygon drawn (empty: no footprint); the server checks it.
 */
(function () {
  "use strict";

  var FRANCE = [46.6, 2.4];
  var source = document.getElementById("action-map-data");
  if (!source || typeof L === "undefined") return;
  var data = JSON.parse(source.textContent);
  var element = document.getElementById("action-carte");
  if (!element) return;
  var editing = data.mode === "edit";
  var map = L.map(element, { maxZoom: 19, doubleClickZoom: !editing });
  L.control.scale({ imperial: false }).addTo(map);

  // Polygons as GeoJSON coordinates: [[ring of [lng, lat]], …].
  function polygonsOf(geometry) {
    if (!geometry) return [];
    if (geometry.type === "Polygon") return [geometry.coordinates];
    if (geometry.type === "MultiPolygon") return geometry.coordinates.slice();
    if (geometry.type === "GeometryCollection") {
      return (geometry.geometries || []).reduce(function (all, g) { return all.concat(polygonsOf(g)); }, []);
    }
    return [];
  }

  function latLngs(polygon) {
    return polygon.map(function (ring) {
      return ring.map(function (p) { return [p[1], p[0]]; });
    });
  }

  var polygons = polygonsOf(data.geometry);
  var current = []; // the vertices of the polygon being drawn, as [lng, lat]
  var drawn = L.featureGroup().addTo(map);

  function fit() {
    if (drawn.getLayers().length) {
      map.fitBounds(drawn.getBounds(), { maxZoom: 16, padding: [20, 20] });
    } else {
      map.setView(FRANCE, 5);
    }
  }

  function render() {
    drawn.clearLayers();
    polygons.forEach(function (p) {
      L.polygon(latLngs(p), {
        color: "#000091", weight: 2, fillOpacity: 0.25, className: "action-emprise", interactive: !editing,
      }).addTo(drawn);
    });
    if (current.length) {
      var line = current.map(function (p) { return [p[1], p[0]]; });
      L.polyline(line, { color: "#c9191e", dashArray: "4 4", weight: 2 }).addTo(drawn);
      line.forEach(function (ll, i) {
        L.circleMarker(ll, { radius: i === 0 ? 6 : 4, color: "#c9191e", className: "action-sommet", interactive: false })
          .addTo(drawn);
      });
    }
  }

  if (!editing) {
    render();
    fit();
    element.dataset.ready = "1";
    return;
  }

  /* The outlines of the départements where the user writes, read from the API as the user:
     a reference to draw on (no base map is reachable by default); the view starts on them. */
  function outlines() {
    var codes = data.departements || [];
    var layer = L.featureGroup().addTo(map);
    return Promise.all(codes.map(function (code) {
      return fetch(data.root + "/collections/departements/items/" + encodeURIComponent(code) + "?f=json", {
        credentials: "same-origin",
        headers: { Accept: "application/geo+json" },
      }).then(function (r) { return r.ok ? r.json() : null; }).then(function (feature) {
        if (feature) {
          L.geoJSON(feature, { interactive: false, style: { color: "#666", weight: 1, fill: false } }).addTo(layer);
        }
      });
    })).then(function () {
      if (!polygons.length && layer.getLayers().length) map.fitBounds(layer.getBounds());
    });
  }

  var field = document.getElementById(data.field);
  var status = document.getElementById("emprise-etat");

  function say(text) {
    if (status) status.textContent = text;
  }

  function sync() {
    field.value = polygons.length ? JSON.stringify({ type: "MultiPolygon", coordinates: polygons }) : "";
    element.dataset.polygons = String(polygons.length);
    element.dataset.vertices = String(current.length);
    render();
  }

  function close() {
    if (current.length < 3) {
      say("Un polygone a besoin d'au moins trois sommets.");
      return;
    }
    polygons.push([current.concat([current[0]])]);
    current = [];
    sync();
    say("Polygone fermé : l'emprise compte " + polygons.length + " polygone(s).");
  }

  function round(x) {
    return Math.round(x * 1e6) / 1e6;
  }

  map.on("click", function (event) {
    var point = map.latLngToContainerPoint(event.latlng);
    if (current.length) {
      var first = map.latLngToContainerPoint(L.latLng(current[0][1], current[0][0]));
      var last = map.latLngToContainerPoint(L.latLng(current[current.length - 1][1], current[current.length - 1][0]));
      if (current.length >= 3 && point.distanceTo(first) < 8) {
        close();
        return;
      }
      if (point.distanceTo(last) < 4) return; // the second click of a double click
    }
    current.push([round(event.latlng.lng), round(event.latlng.lat)]);
    sync();
    say(current.length + " sommet(s) placé(s).");
  });
  map.on("dblclick", function () {
    close();
  });

  document.getElementById("emprise-fermer").addEventListener("click", close);
  document.getElementById("emprise-annuler").addEventListener("click", function () {
    if (current.length) {
      current.pop();
      say("Dernier sommet retiré.");
    } else if (polygons.length) {
      polygons.pop();
      say("Dernier polygone retiré.");
    }
    sync();
  });
  document.getElementById("emprise-effacer").addEventListener("click", function () {
    polygons = [];
    current = [];
    sync();
    say("Emprise effacée.");
  });
  document.getElementById("emprise-fichier").addEventListener("change", function (event) {
    var file = event.target.files[0];
    if (!file) return;
    var reader = new FileReader();
    reader.onload = function () {
      var read;
      try {
        read = JSON.parse(String(reader.result));
      } catch (e) {
        say("Le fichier n'est pas du GeoJSON lisible.");
        return;
      }
      var geometries = read.type === "FeatureCollection"
        ? (read.features || []).map(function (f) { return f && f.geometry; })
        : [read.type === "Feature" ? read.geometry : read];
      var found = geometries.reduce(function (all, g) { return all.concat(polygonsOf(g)); }, []);
      if (!found.length) {
        say("Le fichier ne contient aucun polygone.");
        return;
      }
      polygons = polygons.concat(found);
      current = [];
      sync();
      fit();
      say(found.length + " polygone(s) importé(s) de « " + file.name + " ».");
    };
    reader.readAsText(file);
  });
  // A form posted with a polygon half drawn: close it first if it can be.
  field.form.addEventListener("submit", function () {
    if (current.length >= 3) close();
  });

  sync();
  fit();
  outlines().catch(function () { return null; }).then(function () { element.dataset.ready = "1"; });
})();
