// Résorption: Chart.js in the State's design system, shared by every page with charts (load it after
// chart.umd.min.js, before the page's own script). The colours are the DSFR's own variables, read
// from the page once the DSFR has set its theme (light or dark, display settings of the footer);
// a page hands its drawing to `resorptionCharts.draw(fn)`, which draws again when the theme changes.
(function () {
  "use strict";

  if (typeof Chart === "undefined") {
    return;
  }
  var root = document.documentElement;
  // The DSFR's illustrative colours, blue-france first (each has its dark-theme value).
  var NAMES = [
    "blue-france", "red-marianne", "green-emeraude", "orange-terre-battue", "purple-glycine",
    "blue-ecume", "brown-cafe-creme", "pink-tuile"
  ];
  var number = new Intl.NumberFormat("fr-FR");
  var api = { number: number, palette: [], ratings: {} };
  var drawings = [];

  function dsfr(style, name, fallback) {
    return style.getPropertyValue(name).trim() || fallback;
  }

  function readColours() {
    var style = getComputedStyle(root);
    api.palette = NAMES.map(function (name) {
      return dsfr(style, "--background-action-high-" + name, "#000091");
    });
    // Ratings from good to bad: the DSFR's success, warning and error colours, grey when unknown.
    api.ratings = {
      good: dsfr(style, "--background-action-high-success", "#18753c"),
      to_improve: dsfr(style, "--background-flat-warning", "#b34000"),
      bad: dsfr(style, "--background-action-high-error", "#ce0500"),
      unknown: dsfr(style, "--background-disabled-grey", "#b5b5b5")
    };
    Chart.defaults.color = dsfr(style, "--text-default-grey", "#3a3a3a");
    Chart.defaults.borderColor = dsfr(style, "--border-default-grey", "#dddddd");
  }

  Chart.defaults.locale = "fr-FR";
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.plugins.legend.position = "bottom";
  // Tooltips of counts in French (12 345); a suppressed figure (null) says so.
  Chart.defaults.plugins.tooltip.callbacks.label = function (ctx) {
    return ctx.dataset.label + " : " + (ctx.raw === null ? "secret statistique" : number.format(ctx.raw));
  };

  function drawAll() {
    readColours();
    Object.values(Chart.instances).forEach(function (chart) { chart.destroy(); });
    drawings.forEach(function (fn) { fn(api); });
  }

  var themed = root.hasAttribute("data-fr-theme");
  api.draw = function (fn) {
    drawings.push(fn);
    if (themed) {
      readColours();
      fn(api);
    }
  };
  // The DSFR sets (and changes) `data-fr-theme` on <html>: draw then, in the theme's colours.
  new MutationObserver(function () {
    themed = true;
    drawAll();
  }).observe(root, { attributes: true, attributeFilter: ["data-fr-theme"] });
  // Without the DSFR's script (it failed to load), draw anyway in the light colours.
  setTimeout(function () {
    if (!themed) {
      themed = true;
      drawAll();
    }
  }, 1000);

  window.resorptionCharts = api;
})();
