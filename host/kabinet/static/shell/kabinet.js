// Small behaviours of the page shell (no inline scripts: the CSP allows only files).
(function () {
  "use strict";
  // <form data-confirm="Delete?">: ask before submitting (a destructive action).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form instanceof HTMLFormElement ? form.getAttribute("data-confirm") : null;
    if (question && !window.confirm(question)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);
  // <select data-autosubmit> (the header's company switch): choosing submits its form
  // as a plain POST, so the answer (a 303 back to the page) loads the whole page. Caught
  // on the way down and stopped there: a page's own listeners (an htmx filter form's
  // "change from:select") never take the header's choice for one of theirs.
  document.addEventListener("change", function (event) {
    var select = event.target;
    if (select instanceof HTMLSelectElement && select.hasAttribute("data-autosubmit") && select.form) {
      event.stopPropagation();
      select.form.requestSubmit();
    }
  }, true);
  // The header's menus (<details class="navmenu">) close on a click elsewhere, on Escape,
  // and when another opens.
  function closeMenus(except) {
    document.querySelectorAll("details.navmenu[open]").forEach(function (menu) {
      if (menu !== except) { menu.removeAttribute("open"); }
    });
  }
  document.addEventListener("click", function (event) {
    var target = event.target instanceof Element ? event.target : null;
    closeMenus(target && target.closest("details.navmenu"));
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      var open = document.querySelector("details.navmenu[open]");
      closeMenus(null);
      if (open) { open.querySelector("summary").focus(); }
    }
  });
  // On a phone the navigation is one scrolling row: show the current section.
  document.addEventListener("DOMContentLoaded", function () {
    var current = document.querySelector(".mainnav ul a[aria-current]");
    var row = current && current.closest("ul");
    if (row && row.scrollWidth > row.clientWidth) {
      var left = current.getBoundingClientRect().left - row.getBoundingClientRect().left;
      row.scrollLeft += left - (row.clientWidth - current.offsetWidth) / 2;
    }
  });
})();
