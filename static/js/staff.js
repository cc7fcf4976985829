/* Staff pages, progressive enhancement only: every action works without this file. */
(function () {
  "use strict";

  // A canned response fills the reply box; the select is reset so the server does not add it twice.
  document.querySelectorAll("select[data-canned-for]").forEach(function (select) {
    var target = document.getElementById(select.getAttribute("data-canned-for"));
    if (!target) { return; }
    select.addEventListener("change", function () {
      var option = select.options[select.selectedIndex];
      var text = option ? option.getAttribute("data-text") : "";
      if (!text) { return; }
      target.value = target.value.trim() ? target.value.replace(/\s+$/, "") + "\n\n" + text : text;
      select.value = "";
      target.focus();
    });
  });

  // Who else is looking at this ticket, and whether it changed since the page was loaded.
  var presence = document.getElementById("presence");
  if (!presence || !window.fetch) { return; }
  var url = presence.getAttribute("data-url");
  var version = presence.getAttribute("data-version");
  var lang = document.documentElement.lang || "en";
  var words = {
    looking: presence.getAttribute("data-looking") || " is also looking at this ticket.",
    changed: presence.getAttribute("data-changed") || "This ticket changed since you opened it. Reload to see the latest."
  };

  function show(data) {
    presence.textContent = "";
    var lines = [];
    if (data.viewers && data.viewers.length) { lines.push(data.viewers.join(", ") + words.looking); }
    if (data.changed) { lines.push(words.changed); }
    lines.forEach(function (line) {
      var p = document.createElement("p");
      p.className = "notice warning";
      p.textContent = line;
      presence.appendChild(p);
    });
  }

  function poll() {
    fetch(url + "?version=" + encodeURIComponent(version), {
      credentials: "same-origin",
      headers: { "Accept": "application/json", "Accept-Language": lang }
    })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) { if (data) { show(data); } })
      .catch(function () { /* offline: keep what the page shows */ });
  }

  var every = parseInt(presence.getAttribute("data-poll-seconds"), 10) || 4;
  window.setInterval(poll, every * 1000);
})();
