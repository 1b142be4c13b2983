/* A secret shown once is selected when focused, ready to copy (kuaishu, no dependencies).
 * A static file rather than an onfocus attribute: the Content-Security-Policy allows no inline
 * script, handlers included. */
(function () {
  "use strict";
  var fields = document.querySelectorAll("input.secret[readonly]");
  for (var i = 0; i < fields.length; i++) {
    fields[i].addEventListener("focus", function (event) { event.target.select(); });
  }
})();
