// Segmerge preview: reload the page when the workspace changes (the server bumps /_version).
// Everything works without this script; it only saves pressing F5.
(function () {
  "use strict";
  var mine = document.body.getAttribute("data-version");
  var live = document.getElementById("live");
  // the texts are the page's own (in the workspace's language), not the script's
  var on = live ? live.getAttribute("data-on") : "", off = live ? live.getAttribute("data-off") : "";
  function poll() {
    fetch("/_version", { cache: "no-store" })
      .then(function (r) { return r.json(); })
      .then(function (d) {
        if (live) { live.className = "live"; live.textContent = on; }
        if (d.version !== mine) { window.location.reload(); return; }
        window.setTimeout(poll, 700);
      })
      .catch(function () {
        if (live) { live.className = "live off"; live.textContent = off; }
        window.setTimeout(poll, 2000);
      });
  }
  window.setTimeout(poll, 700);
})();
