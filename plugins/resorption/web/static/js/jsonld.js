/* Résorption: embeds the JSON-LD representation of the page in its <head> once loaded, as
 * pygeoapi's inline script did (search engines read it). The CSP forbids inline scripts: the
 * address comes from this script's data-jsonld attribute (templates/_base.html, the page's
 * alternate link of type application/ld+json), else the page's own address with ?f=jsonld.
 * Pages without a JSON-LD form leave this script out (their `jsonld` block is empty).
 */
(function () {
  "use strict";

  var script = document.currentScript;
  var given = script && script.dataset.jsonld;
  var path = given || window.location.origin + window.location.pathname + "?f=jsonld";
  var xhr = new XMLHttpRequest();
  xhr.open("GET", path);
  xhr.onload = function () {
    if (xhr.status !== 200) {
      return;
    }
    var block = document.createElement("script");
    block.type = "application/ld+json";
    // Remove the full context path: search engines don't expect it here, pyld requires it.
    block.textContent = xhr.responseText.replace("docs/jsonldcontext.jsonld", "");
    document.head.appendChild(block);
  };
  xhr.send();
})();
