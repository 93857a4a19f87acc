/* Résorption: the Leaflet maps of pygeoapi's pages (items, one item, a collection's extent).
 *
 * The page gives what to draw in <script type="application/json" id="map-data"> (no inline
 * script: the CSP forbids them):
 *   {"kind": "items" | "item" | "extent", "element": id of the map's <div>,
 *    "baseMap": {"url", "attribution"} or null, "features": GeoJSON, "bbox": [minx, miny, maxx, maxy]}
 * Without a base map (none is reachable from our users' networks by default), features are
 * drawn over the outlines of the départements in view, read from our own API.
 */
(function () {
  "use strict";

  var FRANCE = [46.6, 2.4];
  // The API's root: this script is served at {root}/static/js/maps.js.
  var ROOT = document.currentScript ? document.currentScript.src.replace(/\/static\/js\/maps\.js.*$/, "") : "";

  function baseMap(map, base) {
    if (base && base.url) {
      map.addLayer(L.tileLayer(base.url, { maxZoom: 18, attribution: base.attribution || "" }));
    }
  }

  // Without a base map, the outlines of the départements in view (our own data, public), so
  // that no map is a blank page: drawn once the view is set, behind the features.
  function territories(map, base) {
    if ((base && base.url) || !ROOT || !window.fetch) {
      return;
    }
    var b = map.getBounds();
    var bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(function (v) {
      return v.toFixed(4);
    });
    var url = ROOT + "/collections/departements/items?f=json&limit=30&properties=name&bbox=" + bbox.join(",");
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/geo+json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (collection) {
        if (!collection) {
          return;
        }
        var outlines = L.geoJSON(collection, {
          interactive: false,
          style: { color: "#7a7a85", weight: 1, fill: false, className: "fond-territoires" },
        });
        map.addLayer(outlines);
        outlines.bringToBack();
      })
      .catch(function () { /* the features stay drawn on a plain background */ });
  }

  // A popup built as DOM, not HTML text: a name is data, never markup.
  function linkTo(feature, layer) {
    var link = document.createElement("a");
    link.href = feature.properties.href;
    link.textContent = feature.properties.title;
    layer.bindPopup(link);
  }

  function fit(map, layer) {
    if (layer.getLayers().length) {
      map.fitBounds(layer.getBounds(), { maxZoom: 15 });
    } else {
      map.setView(FRANCE, 5); // no geometry (skipGeometry): metropolitan France
    }
  }

  // Markers stay out of the tab order: the page's table links to the same items (the keyboard's
  // and screen readers' way, and the larger target WCAG 2.5.8 asks when markers overlap).
  function marker(feature, latlng) {
    return L.marker(latlng, { keyboard: false, alt: "" });
  }

  function items(map, data) {
    var features = L.geoJSON(data.features, { onEachFeature: linkTo, pointToLayer: marker });
    var markers = L.markerClusterGroup({
      disableClusteringAtZoom: 9,
      chunkedLoading: true,
      chunkInterval: 500,
    });
    // The view first: the cluster group needs the map's zoom when it is added.
    fit(map, features);
    markers.addLayer(features);
    map.addLayer(markers);
  }

  function item(map, data) {
    var feature = L.geoJSON(data.features, { pointToLayer: marker });
    fit(map, feature);
    map.addLayer(feature);
  }

  // A bbox across the antimeridian (maxx < minx) is drawn eastwards.
  function extent(map, data) {
    var b = data.bbox.slice();
    if (b[2] < b[0]) {
      b[2] += 360;
    }
    var box = L.rectangle([[b[1], b[0]], [b[3], b[2]]]);
    map.addLayer(box);
    map.fitBounds(box.getBounds(), { maxZoom: 10 });
  }

  var source = document.getElementById("map-data");
  if (!source || typeof L === "undefined") {
    return;
  }
  var data = JSON.parse(source.textContent);
  var map = L.map(data.element, { maxZoom: 18 }); // set here: there may be no tile layer to set it
  baseMap(map, data.baseMap);
  if (data.kind !== "extent") {
    L.control.scale({ imperial: false }).addTo(map);
  }
  ({ items: items, item: item, extent: extent })[data.kind](map, data);
  territories(map, data.baseMap);
})();
