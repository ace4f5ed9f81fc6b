// The registry's filters are folded on a phone and open on a wide screen (or when set).
// Loaded right after them, so a wide screen never paints them folded.
(function () {
  "use strict";
  if (window.matchMedia("(min-width: 40rem)").matches) {
    document.querySelectorAll("details[data-open-wide]").forEach(function (box) {
      box.open = true;
    });
  }
})();
