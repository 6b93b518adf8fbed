// exotrace page behaviour. No inline script anywhere (the Content-Security-Policy forbids it):
// pages declare behaviour with data- attributes and this file wires it up.
(function () {
  "use strict";
  // <button data-confirm="Really?">: ask before submitting.
  document.addEventListener("click", function (event) {
    var el = event.target.closest("[data-confirm]");
    if (el && !window.confirm(el.getAttribute("data-confirm"))) {
      event.preventDefault();
      event.stopPropagation();
    }
  }, true);
})();
