// Résorption: the charts of a territory's dashboard, drawn with Chart.js (vendored, no CDN) from the
// figures the page embeds in <script id="dashboard-data"> (resorption/web/dashboard.py, chart_data).
(function () {
  "use strict";

  var source = document.getElementById("dashboard-data");
  if (!source || typeof Chart === "undefined" || !window.resorptionCharts) {
    return;
  }
  var data = JSON.parse(source.textContent);
  var number = window.resorptionCharts.number;
  var percent = new Intl.NumberFormat("fr-FR", { maximumFractionDigits: 1 });
  var dateFormat = new Intl.DateTimeFormat("fr-FR", { day: "2-digit", month: "2-digit", year: "numeric" });
  var labels = data.dates.map(function (iso) {
    return dateFormat.format(new Date(iso + "T12:00:00"));
  });
  // One palette for every chart (the DSFR's, static/js/charts.js); the ratings go from good
  // (green) to bad (red). Set by draw() below, in the colours of the current theme.
  var colours = [];
  var ratingColours = {};

  function integerAxis(title) {
    return { beginAtZero: true, grace: "5%", ticks: { precision: 0 }, title: { display: !!title, text: title } };
  }

  function line(id, series) {
    return new Chart(document.getElementById(id), {
      type: "line",
      data: {
        labels: labels,
        datasets: series.map(function (s, i) {
          return { label: s.label, data: s.data, borderColor: colours[i], backgroundColor: colours[i],
                   pointRadius: labels.length > 40 ? 0 : 2, tension: 0.2 };
        })
      },
      options: {
        interaction: { mode: "index", intersect: false },
        scales: { y: integerAxis() },
        plugins: { legend: { display: series.length > 1 } }
      }
    });
  }

  function stackedBars(id, series, options) {
    return new Chart(document.getElementById(id), {
      type: "bar",
      data: {
        labels: options.labels || labels,
        datasets: series.map(function (s, i) {
          return { label: s.label, data: s.data, backgroundColor: s.colour || colours[i % colours.length] };
        })
      },
      options: Object.assign({
        interaction: { mode: "index", intersect: false },
        scales: { x: { stacked: options.stacked }, y: Object.assign(integerAxis(), { stacked: options.stacked }) }
      }, options.extra || {})
    });
  }

  window.resorptionCharts.draw(function (charts) {
    colours = charts.palette;
    ratingColours = charts.ratings;
    line("chart-sites", [{ label: "Sites ouverts", data: data.sites }]);
    line("chart-people", [
      { label: "Personnes", data: data.people },
      { label: "Mineurs", data: data.minors }
    ]);
    // A few sites close, with tens of people each: one axis each, or the sites would not show.
    new Chart(document.getElementById("chart-closures"), {
      data: {
        labels: labels,
        datasets: [
          { type: "bar", label: "Sites fermés", data: data.closures.sites, backgroundColor: colours[0],
            yAxisID: "sites", order: 2 },
          { type: "line", label: "Personnes de ces sites", data: data.closures.people, borderColor: colours[1],
            backgroundColor: colours[1], yAxisID: "people", pointRadius: 2, order: 1 }
        ]
      },
      options: {
        interaction: { mode: "index", intersect: false },
        scales: {
          sites: Object.assign(integerAxis("Sites"), { position: "left" }),
          people: Object.assign(integerAxis("Personnes"), { position: "right", grid: { drawOnChartArea: false } })
        }
      }
    });
    stackedBars("chart-solutions", data.solutions.map(function (s) {
      return { label: s.label, data: s.people };
    }), { stacked: true });
    stackedBars("chart-living", data.living.ratings.map(function (r) {
      return { label: r.label, data: r.shares, colour: ratingColours[r.key] };
    }), {
      labels: data.living.topics,
      stacked: true,
      extra: {
        indexAxis: "y",
        scales: {
          x: { stacked: true, min: 0, max: 100, ticks: { callback: function (v) { return v + " %"; } } },
          y: { stacked: true }
        },
        plugins: {
          tooltip: {
            callbacks: {
              label: function (ctx) {
                return ctx.dataset.label + " : " + (ctx.raw === null ? "—" : percent.format(ctx.raw) + " %");
              }
            }
          }
        }
      }
    });
  });
})();
