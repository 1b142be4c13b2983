/* Live progress of a load (kuaishu, vendored, no dependencies).
 * The run page works without this script (a refresh link); with it, the page reads the run's
 * JSON every second, moves the progress bar and counts, and reloads once the run has finished
 * so the log, the error and the quarantine link appear as the server renders them. */
(function () {
  "use strict";
  var box = document.querySelector("[data-run-url]");
  if (!box || !window.fetch) { return; }
  var url = box.getAttribute("data-run-url");
  var bar = box.querySelector("progress");
  var failures = 0;

  function show(run) {
    if (bar) { bar.value = run.percent; bar.textContent = run.percent + "%"; }
    var fields = document.querySelectorAll("[data-field]");
    for (var i = 0; i < fields.length; i++) {
      var name = fields[i].getAttribute("data-field");
      if (Object.prototype.hasOwnProperty.call(run, name) && run[name] !== null) {
        fields[i].textContent = String(run[name]);
      }
    }
  }

  function tick() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) { throw new Error(String(response.status)); }
        return response.json();
      })
      .then(function (run) {
        failures = 0;
        show(run);
        if (run.finished) { window.location.reload(); return; }
        window.setTimeout(tick, 1000);
      })
      .catch(function () {
        // A restarting server or a dropped connection: back off, give up after a minute.
        failures += 1;
        if (failures < 20) { window.setTimeout(tick, 3000); }
      });
  }

  window.setTimeout(tick, 1000);
})();
