/* Résorption: the small behaviours of pygeoapi's pages, without inline scripts (the CSP forbids
 * them) and without inline handlers:
 * - <select data-page-size>: a new page size keeps the query, back to the first page (items);
 * - <select data-submit-on-change>: choosing a value submits the select's form (jobs).
 */
(function () {
  "use strict";

  function pageSize(select) {
    var params = new URLSearchParams(window.location.search);
    select.value = params.get("limit") || select.options[0].value;
    select.addEventListener("change", function () {
      params.set("limit", select.value);
      params.delete("offset");
      window.location.search = params.toString();
    });
  }

  function submitOnChange(select) {
    select.addEventListener("change", function () {
      if (select.form) {
        select.form.requestSubmit();
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("select[data-page-size]").forEach(pageSize);
    document.querySelectorAll("select[data-submit-on-change]").forEach(submitOnChange);
  });
})();
