// Résorption: Chart.js in the State's design system, shared by every page with charts (load it after
// chart.umd.min.js, before the page's own script). The colours are the DSFR's own variables, read
// from the page: they follow the theme (light or dark) chosen in the display settings.
(function () {
  "use strict";

  if (typeof Chart === "undefined") {
    return;
  }
  var style = getComputedStyle(document.documentElement);
  function dsfr(name, fallback) {
    return style.getPropertyValue(name).trim() || fallback;
  }
  // The DSFR's illustrative colours, blue-france first (each has its dark-theme value).
  var palette = [
    "blue-france", "red-marianne", "green-emeraude", "orange-terre-battue", "purple-glycine",
    "blue-ecume", "brown-cafe-creme", "pink-tuile"
  ].map(function (name) {
    return dsfr("--background-action-high-" + name, "#000091");
  });
  var number = new Intl.NumberFormat("fr-FR");

  Chart.defaults.locale = "fr-FR";
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.color = dsfr("--text-default-grey", "#3a3a3a");
  Chart.defaults.borderColor = dsfr("--border-default-grey", "#dddddd");
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.plugins.legend.position = "bottom";
  // Tooltips of counts in French (12 345); a suppressed figure (null) says so.
  Chart.defaults.plugins.tooltip.callbacks.label = function (ctx) {
    return ctx.dataset.label + " : " + (ctx.raw === null ? "secret statistique" : number.format(ctx.raw));
  };

  window.resorptionCharts = {
    palette: palette,
    number: number,
    // Ratings from good to bad: the DSFR's success, warning and error colours, grey when unknown.
    ratings: {
      good: dsfr("--background-action-high-success", "#18753c"),
      to_improve: dsfr("--background-action-high-yellow-tournesol", "#f3b824"),
      bad: dsfr("--background-action-high-error", "#ce0500"),
      unknown: dsfr("--background-disabled-grey", "#b5b5b5")
    }
  };
})();
