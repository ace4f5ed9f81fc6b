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
  // The header (shell/base.html): its menus are <details> that work without this script;
  // here they also close on a click elsewhere and on Escape (focus back on their button),
  // opening one closes the others, and each <summary> says aria-expanded.
  var MENUS = "details.navmenu, details.sitemenu";
  function expanded(menu) {
    var summary = menu.querySelector(":scope > summary");
    if (summary) { summary.setAttribute("aria-expanded", menu.open ? "true" : "false"); }
  }
  function closeMenus(except) {
    document.querySelectorAll("details.navmenu[open]").forEach(function (menu) {
      if (menu !== except && !menu.contains(except)) { menu.removeAttribute("open"); }
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(MENUS).forEach(expanded);
  });
  document.addEventListener("toggle", function (event) {
    var menu = event.target;
    if (menu instanceof HTMLDetailsElement && menu.matches(MENUS)) { expanded(menu); }
  }, true);
  document.addEventListener("click", function (event) {
    var target = event.target instanceof Element ? event.target : null;
    closeMenus(target && target.closest("details.navmenu"));
    var site = document.querySelector("details.sitemenu[open]");
    if (site && !(target && site.contains(target))) { site.removeAttribute("open"); }
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") { return; }
    var open = document.querySelector("details.navmenu[open]") || document.querySelector("details.sitemenu[open]");
    if (!open || (open.matches(".sitemenu") && !open.querySelector(":scope > summary").offsetParent)) { return; }
    if (open.matches(".navmenu")) { closeMenus(null); } else { open.removeAttribute("open"); }
    var summary = open.querySelector(":scope > summary");
    if (summary) { summary.focus(); }
  });
  // The picker (shell/picker.html): a search box that finds an organization, a person or a
  // counterparty by name and fills a hidden id. Without this script the number field (or
  // select) of old stays. The search asks the picker's source through htmx
  // (?q=..., answered with list items whose buttons carry data-pick and data-label).
  function pickerOf(node) { return node instanceof Element ? node.closest("[data-picker]") : null; }
  function enhance(root) {
    (root || document).querySelectorAll("[data-picker]:not([data-ready])").forEach(function (box) {
      var fallback = box.querySelector(".picker-fallback");
      var ui = box.querySelector(".picker-ui");
      var text = box.querySelector("[data-picker-text]");
      if (!fallback || !ui || !text || !window.htmx) { return; }
      box.setAttribute("data-ready", "");
      fallback.remove();
      ui.hidden = false;
      ui.querySelectorAll("input[type=hidden]").forEach(function (input) { input.disabled = false; });
      var label = box.querySelector("label");
      if (label) { label.htmlFor = text.id; }
    });
  }
  function results(box) { return box.querySelector(".picker-results"); }
  function closeList(box) {
    results(box).innerHTML = "";
    box.querySelector("[data-picker-text]").setAttribute("aria-expanded", "false");
  }
  var timers = new WeakMap();
  function search(box) {
    var text = box.querySelector("[data-picker-text]");
    var url = box.getAttribute("data-source");
    var sep = url.indexOf("?") < 0 ? "?" : "&";
    window.clearTimeout(timers.get(box));
    timers.set(box, window.setTimeout(function () {
      window.htmx.ajax("GET", url + sep + "q=" + encodeURIComponent(text.value.trim()),
        {target: results(box), swap: "innerHTML"}).then(function () {
        text.setAttribute("aria-expanded", results(box).children.length ? "true" : "false");
      });
    }, 250));
  }
  function changed(input) { input.dispatchEvent(new Event("change", {bubbles: true})); }
  function pick(box, button) {
    var id = button.getAttribute("data-pick");
    var label = button.getAttribute("data-label");
    var text = box.querySelector("[data-picker-text]");
    if (box.hasAttribute("data-multiple")) {
      var list = box.querySelector(".picker-chosen");
      var name = box.getAttribute("data-name");
      var have = Array.prototype.some.call(list.querySelectorAll("input"), function (i) { return i.value === id; });
      if (!have) {
        var chip = document.createElement("li");
        chip.className = "picker-chip";
        var input = document.createElement("input");
        input.type = "hidden"; input.name = name; input.value = id;
        var span = document.createElement("span");
        span.textContent = label;
        var remove = document.createElement("button");
        remove.type = "button"; remove.className = "link"; remove.textContent = "\u00d7";
        remove.setAttribute("data-picker-remove", "");
        remove.setAttribute("aria-label", (text.getAttribute("data-remove") || "") + ": " + label);
        chip.append(input, span, " ", remove);
        list.append(chip);
        changed(input);
      }
      text.value = "";
    } else {
      var hidden = box.querySelector("[data-picker-value]");
      hidden.value = id;
      text.value = label;
      changed(hidden);
    }
    closeList(box);
    text.focus();
  }
  document.addEventListener("DOMContentLoaded", function () { enhance(document); });
  document.addEventListener("htmx:load", function (event) { enhance(event.target); });
  // Typing in the search box: the hidden id no longer matches the text (emptied), and the
  // page's own listeners (a filter form's "change"/"keyup") never see the typing.
  ["input", "keyup", "change"].forEach(function (type) {
    document.addEventListener(type, function (event) {
      var target = event.target;
      if (!(target instanceof HTMLInputElement) || !target.hasAttribute("data-picker-text")) { return; }
      event.stopPropagation();
      if (type !== "input") { return; }
      var box = pickerOf(target);
      var hidden = box.querySelector("[data-picker-value]");
      if (hidden && hidden.value) { hidden.value = ""; if (!target.value) { changed(hidden); } }
      search(box);
    }, true);
  });
  document.addEventListener("focusin", function (event) {
    var target = event.target;
    if (target instanceof HTMLInputElement && target.hasAttribute("data-picker-text")) {
      var box = pickerOf(target);
      if (!results(box).children.length) { search(box); }
    }
  });
  document.addEventListener("click", function (event) {
    var target = event.target instanceof Element ? event.target : null;
    var box = pickerOf(target);
    document.querySelectorAll("[data-picker][data-ready]").forEach(function (other) {
      if (other !== box) { closeList(other); }
    });
    if (!box || !target) { return; }
    var option = target.closest("[data-pick]");
    if (option) { pick(box, option); return; }
    var remove = target.closest("[data-picker-remove]");
    if (remove) {
      var chip = remove.closest("li");
      var form = box.closest("form");
      chip.remove();
      box.querySelector("[data-picker-text]").focus();
      if (form) { form.dispatchEvent(new Event("change", {bubbles: true})); }
    }
  });
  document.addEventListener("keydown", function (event) {
    var target = event.target instanceof Element ? event.target : null;
    var box = pickerOf(target);
    if (!box || !box.hasAttribute("data-ready")) { return; }
    var options = Array.prototype.slice.call(box.querySelectorAll("[data-pick]"));
    var at = options.indexOf(target);
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      if (!options.length) { return; }
      event.preventDefault();
      var next = event.key === "ArrowDown" ? at + 1 : at - 1;
      if (next < 0) { box.querySelector("[data-picker-text]").focus(); return; }
      options[Math.min(next, options.length - 1)].focus();
    } else if (event.key === "Enter" && target.hasAttribute("data-picker-text")) {
      // Enter picks the only match (or the first), never submits the form half-chosen.
      event.preventDefault();
      if (options.length) { pick(box, options[0]); }
    } else if (event.key === "Escape") {
      closeList(box);
      box.querySelector("[data-picker-text]").focus();
    }
  }, true);
})();
