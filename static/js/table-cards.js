/* Tables that become cards on a phone (<table class="stack">, see app.css; the admin's
 * result lists, see css/admin.css): each cell gets its column's name as data-label, which
 * the phone layout shows beside the value. Cells that carry their own data-label keep it. */
(function () {
  "use strict";
  function names(table) {
    var head = table.tHead;
    if (!head || !head.rows.length) return [];
    var row = head.rows[head.rows.length - 1];
    var out = [];
    Array.prototype.forEach.call(row.cells, function (cell) {
      // The admin's sortable headers hold sort controls beside the name (in .text).
      var text = (cell.querySelector(".text") || cell).textContent.replace(/\s+/g, " ").trim();
      for (var i = 0; i < (cell.colSpan || 1); i++) out.push(text);
    });
    return out;
  }
  function label(table) {
    var columns = names(table);
    if (!columns.length) return;
    var groups = Array.prototype.slice.call(table.tBodies);
    if (table.tFoot) groups.push(table.tFoot);
    groups.forEach(function (body) {
      Array.prototype.forEach.call(body.rows, function (row) {
        var index = 0;
        Array.prototype.forEach.call(row.cells, function (cell) {
          var name = columns[index];
          if (name && !cell.hasAttribute("data-label")) cell.setAttribute("data-label", name);
          index += cell.colSpan || 1;
        });
      });
    });
  }
  function init() {
    Array.prototype.forEach.call(document.querySelectorAll("table.stack, table#result_list"), label);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
