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
      deepLinking: true,
      presets: [SwaggerUIBundle.presets.apis],
      // Without the standalone top bar: its logo is an SVG with an inline <style>, which the
      // CSP refuses, and its URL box would let the page load another site's document.
      layout: "BaseLayout",
      // The validator badge would send the document to validator.swagger.io.
      validatorUrl: null,
    });
  });
})();
