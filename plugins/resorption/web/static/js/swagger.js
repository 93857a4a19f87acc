/* Résorption: starts Swagger UI (swagger-ui-dist, vendored) on the OpenAPI document named by this
 * script's data-url attribute (templates/openapi/swagger.html); no inline script, the CSP forbids it.
 */
(function () {
  "use strict";

  var url = document.currentScript.dataset.url;
  window.addEventListener("load", function () {
    window.ui = SwaggerUIBundle({
      url: url,
      dom_id: "#swagger-ui",
      // No deep links: Swagger UI puts their anchor inside each operation's button (a link
      // within a button, which keyboards and screen readers cannot reach on its own).
      deepLinking: false,
      presets: [SwaggerUIBundle.presets.apis],
      // Without the standalone top bar: its logo is an SVG with an inline <style>, which the
      // CSP refuses, and its URL box would let the page load another site's document.
      layout: "BaseLayout",
      // The validator badge would send the document to validator.swagger.io.
      validatorUrl: null,
    });
    nameUnlabelledSelects(document.getElementById("swagger-ui"));
  });

  // Swagger UI's lists (servers, a parameter's values, media types) have no label: each one it
  // draws gets an accessible name, from its parameter when it has one.
  function nameUnlabelledSelects(root) {
    function name(select) {
      // (a label that wraps the list names it only by its own words, not by the options')
      var labelled = Array.prototype.some.call(select.labels || [], function (l) {
        return l.textContent.replace(select.textContent, "").trim();
      });
      if (select.getAttribute("aria-label") || labelled) return;
      var parameter = select.closest("tr[data-param-name]");
      var label = "Choix";
      if (select.id === "servers") label = "Serveur de l'API";
      else if (parameter) label = "Valeur du paramètre " + parameter.dataset.paramName;
      else if (select.closest(".response-controls, .responses-inner")) label = "Type de contenu de la réponse";
      else if (select.closest(".content-type-wrapper, .body-param-content-type")) label = "Type de contenu";
      select.setAttribute("aria-label", label);
    }
    new MutationObserver(function () {
      root.querySelectorAll("select").forEach(name);
    }).observe(root, { childList: true, subtree: true });
  }
})();
