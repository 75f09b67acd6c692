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
    var narrow = window.innerWidth < 640;
    var categoryTicks = { precision: 0, autoSkip: true, maxRotation: narrow ? 0 : 50,
                          callback: function (value) { return shorten(this.getLabelForValue(value), narrow ? 12 : 28); } };
    new Chart(canvas, {
      type: spec.type || "bar",
      data: { labels: spec.labels, datasets: datasets },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        locale: document.documentElement.lang || undefined,
        indexAxis: spec.horizontal ? "y" : "x",
        interaction: { mode: "index", intersect: false },
        plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } },
                   title: { display: !!spec.title, text: spec.title } },
        scales: {
          x: { stacked: !!spec.stacked, beginAtZero: true, grid: { display: !!spec.horizontal },
               ticks: spec.horizontal ? { precision: 0 } : categoryTicks },
          y: { stacked: !!spec.stacked, beginAtZero: true, grid: { display: !spec.horizontal },
               ticks: spec.horizontal ? categoryTicks : { precision: 0 } }
        }
      }
    });
  }

  function shorten(label, max) {
    label = String(label);
    return label.length > max ? label.slice(0, max - 1) + "…" : label;
  }

  // Try it: show the inputs the chosen action takes.
  function fitTryForm() {
    var select = document.getElementById("try-action");
    if (!select) return;
    var action = select.value;
    document.querySelectorAll("#try-form .for-compare").forEach(function (el) { el.hidden = action !== "CompareFace"; });
    document.querySelectorAll("#try-form .for-search").forEach(function (el) { el.hidden = action !== "SearchPersons"; });
  }

  function init(root) {
    (root || document).querySelectorAll("canvas[data-chart]").forEach(drawChart);
  }

  document.addEventListener("DOMContentLoaded", function () {
    init(document);
    if (window.htmx) { window.htmx.onLoad(init); }
    fitTryForm();
    // The menu button is a label for a checkbox: make it answer the keyboard like a button.
    var burger = document.getElementById("nav-burger");
    var toggle = document.getElementById("nav-toggle");
    if (burger && toggle) {
      burger.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") { event.preventDefault(); toggle.click(); }
      });
    }
    var select = document.getElementById("try-action");
    if (select) { select.addEventListener("change", fitTryForm); }
  });

  // Plain (non-htmx) forms that ask before acting.
  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) { event.preventDefault(); }
  }, true);
})();
