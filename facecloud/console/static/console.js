// facecloud console: charts from JSON data blocks, confirmations. No inline scripts (the CSP forbids them).
(function () {
  "use strict";
  var PALETTE = ["#0052d9", "#00a870", "#ed7b2f", "#8e56dd", "#e34d59", "#029cd4", "#a5a5a5", "#d4a017"];
  var SPLIT = { free: "#00a870", pack: "#0052d9", postpaid: "#ed7b2f" };

  function color(name, i) { return SPLIT[name] || PALETTE[i % PALETTE.length]; }

  function drawChart(canvas) {
    if (canvas.dataset.drawn || typeof Chart === "undefined") return;
    var source = document.getElementById(canvas.dataset.chart);
    if (!source) return;
    var spec = JSON.parse(source.textContent);
    canvas.dataset.drawn = "1";
    var datasets = spec.datasets.map(function (d, i) {
      var c = color(d.key || d.label, i);
      return { label: d.label, data: d.data, backgroundColor: c, borderColor: c, borderWidth: spec.type === "line" ? 2 : 0,
               tension: 0.25, pointRadius: 2, maxBarThickness: 38 };
    });
    new Chart(canvas, {
      type: spec.type || "bar",
      data: { labels: spec.labels, datasets: datasets },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        indexAxis: spec.horizontal ? "y" : "x",
        interaction: { mode: "index", intersect: false },
        plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } },
                   title: { display: !!spec.title, text: spec.title } },
        scales: {
          x: { stacked: !!spec.stacked, beginAtZero: true, grid: { display: !!spec.horizontal }, ticks: { precision: 0 } },
          y: { stacked: !!spec.stacked, beginAtZero: true, grid: { display: !spec.horizontal }, ticks: { precision: 0 } }
        }
      }
    });
  }

  function init(root) {
    (root || document).querySelectorAll("canvas[data-chart]").forEach(drawChart);
  }

  document.addEventListener("DOMContentLoaded", function () {
    init(document);
    if (window.htmx) { window.htmx.onLoad(init); }
  });

  // Plain (non-htmx) forms that ask before acting.
  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) { event.preventDefault(); }
  }, true);
})();
