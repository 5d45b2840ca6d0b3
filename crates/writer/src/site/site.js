"use strict";
(function () {
  var index = [];
  try {
    index = JSON.parse(document.getElementById("index").textContent);
  } catch (e) {
    index = [];
  }
  var input = document.getElementById("search");
  var list = document.getElementById("results");
  function show(q) {
    while (list.firstChild) list.removeChild(list.firstChild);
    q = q.trim().toLowerCase();
    if (!q) { list.hidden = true; return; }
    var hits = index.filter(function (it) {
      return (it.kind + " " + it.title + " " + it.detail).toLowerCase().indexOf(q) !== -1;
    }).slice(0, 25);
    if (hits.length === 0) {
      var none = document.createElement("li");
      none.className = "muted";
      none.textContent = "nothing matches";
      list.appendChild(none);
    }
    hits.forEach(function (it) {
      var li = document.createElement("li");
      li.setAttribute("data-kind", it.kind);
      var kind = document.createElement("span");
      kind.className = "kind";
      kind.textContent = it.kind;
      var a = document.createElement("a");
      a.href = it.href;
      a.textContent = it.title;
      var d = document.createElement("div");
      d.className = "muted small";
      d.textContent = it.detail;
      li.appendChild(kind);
      li.appendChild(a);
      li.appendChild(d);
      list.appendChild(li);
    });
    list.hidden = false;
  }
  input.addEventListener("input", function () { show(input.value); });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Escape") { input.value = ""; show(""); }
  });
  list.addEventListener("click", function () { list.hidden = true; });
})();
