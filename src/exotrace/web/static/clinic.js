// Bedside administration page. No inline script (the Content-Security-Policy forbids it).
(function () {
  "use strict";
  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }
  ready(function () {
    var scan = document.querySelector("input.scan");
    if (!scan) { return; }
    // The next scan replaces the identifier shown instead of appending to it.
    var justFocused = false;
    scan.addEventListener("focus", function () { scan.select(); justFocused = true; });
    // A tap that focused the field must not undo the selection when the finger lifts.
    scan.addEventListener("mouseup", function (event) {
      if (justFocused) { event.preventDefault(); justFocused = false; }
    });
    scan.addEventListener("blur", function () { justFocused = false; });
    if (document.activeElement === scan) { scan.select(); }
    // The confirm form carries the vial and subject that were checked. Once either field
    // changes, those checks no longer describe what is typed: withdraw the confirm button
    // until the new entry has been checked.
    var confirm = document.querySelector("form.confirm");
    if (!confirm) { return; }
    var fields = document.querySelectorAll("form.check-form input");
    Array.prototype.forEach.call(fields, function (field) {
      var initial = field.value;
      field.addEventListener("input", function () {
        if (field.value === initial) { return; }
        confirm.hidden = true;
        var checks = document.getElementById("checks");
        if (checks) { checks.hidden = true; }
      });
    });
  });
})();
