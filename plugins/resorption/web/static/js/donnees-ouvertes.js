// Résorption: the charts of the public open-data page (/donnees-ouvertes), drawn with Chart.js in the
// DSFR's colours (static/js/charts.js) from <script id="donnees-graphiques"> (web/public_pages.py).
// A suppressed figure is null: no bar, and the tooltip says « secret statistique ».
(function () {
  "use strict";

  var source = document.getElementById("donnees-graphiques");
  if (!source || typeof Chart === "undefined" || !window.resorptionCharts) {
    return;
  }
  var data = JSON.parse(source.textContent);

  window.resorptionCharts.draw(function (charts) {
    var colours = charts.palette;
    new Chart(document.getElementById("graphique-regions"), {
      type: "bar",
      data: {
        labels: data.regions,
        datasets: [
          { label: data.labels.open_sites, data: data.open_sites, backgroundColor: colours[0], xAxisID: "sites" },
          { label: data.labels.population, data: data.population, backgroundColor: colours[1], xAxisID: "personnes" }
        ]
      },
      options: {
        indexAxis: "y",
        interaction: { mode: "index", intersect: false },
        scales: {
          y: { ticks: { autoSkip: false } },
          sites: { position: "top", beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: data.labels.open_sites } },
          personnes: { position: "bottom", beginAtZero: true, ticks: { precision: 0 }, grid: { drawOnChartArea: false },
                       title: { display: true, text: data.labels.population } }
        }
      }
    });

    new Chart(document.getElementById("graphique-fermetures"), {
      type: "bar",
      data: {
        labels: data.closed_labels,
        datasets: [{ label: "Sites fermés", data: data.closed, backgroundColor: colours.slice(0, data.closed.length) }]
      },
      options: {
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
        plugins: { legend: { display: false } }
      }
    });
  });
})();
