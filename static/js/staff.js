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

  // Bulk actions: "select all" ticks every row of the page, and the count of selected is said.
  var bulkAll = document.getElementById("bulk-all");
  var bulkCount = document.getElementById("bulk-count");
  var checks = Array.prototype.slice.call(document.querySelectorAll("input.bulk-check"));
  function countSelected() {
    var n = checks.filter(function (c) { return c.checked; }).length;
    if (bulkCount) {
      var words = bulkCount.getAttribute("data-selected") || "%(n)s selected";
      bulkCount.textContent = n ? words.replace("%(n)s", n) : "";
    }
    if (bulkAll) { bulkAll.checked = n > 0 && n === checks.length; }
  }
  if (bulkAll) {
    bulkAll.addEventListener("change", function () {
      checks.forEach(function (c) { c.checked = bulkAll.checked; });
      countSelected();
    });
  }
  checks.forEach(function (c) { c.addEventListener("change", countSelected); });

  // Keyboard shortcuts; "?" lists them. Never while typing, never with a modifier key.
  var announcer = document.getElementById("kbd-announce");
  var help = document.getElementById("kbd-help");
  var rows = Array.prototype.slice.call(document.querySelectorAll("tr.ticket-row"));
  var current = -1;

  function announce(text) {
    if (!announcer) { return; }
    announcer.textContent = "";
    window.setTimeout(function () { announcer.textContent = text; }, 50);
  }
  function typing(target) {
    var tag = target && target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  }
  function focusField(id) {
    var field = document.getElementById(id);
    if (!field) { return false; }
    field.focus();
    return true;
  }
  function move(step) {
    if (!rows.length) { return; }
    if (current >= 0) { rows[current].classList.remove("kbd-current"); }
    current = Math.max(0, Math.min(rows.length - 1, current + step));
    var row = rows[current];
    row.classList.add("kbd-current");
    var link = row.querySelector("a.reference");
    if (link) { link.focus(); }
    var subject = row.querySelector(".subject");
    var template = (announcer && announcer.getAttribute("data-row")) || "Ticket %(n)s of %(total)s: %(text)s";
    announce(template.replace("%(n)s", current + 1).replace("%(total)s", rows.length)
      .replace("%(text)s", row.getAttribute("data-reference") + " " + (subject ? subject.textContent.trim() : "")));
  }
  function currentRow() { return current >= 0 ? rows[current] : null; }
  function openCurrent(hash) {
    var row = currentRow();
    var link = row && row.querySelector("a.reference");
    if (link) { window.location.href = link.href + (hash || ""); }
  }
  function assignToMe() {
    var claim = document.getElementById("claim-form");
    if (claim) { claim.requestSubmit ? claim.requestSubmit() : claim.submit(); return; }
    var row = currentRow();
    var form = document.getElementById("bulk-form");
    var action = document.getElementById("id_bulk_action");
    if (!row || !form || !action) { return; }
    checks.forEach(function (c) { c.checked = c.value === row.getAttribute("data-reference"); });
    action.value = "assign_me";
    form.submit();
  }

  // Arriving from a shortcut on another page: put the cursor where it asked.
  if (window.location.hash && /^#id_(q|reply_body|note_body)$/.test(window.location.hash)) {
    focusField(window.location.hash.slice(1));
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) { return; }
    if (help && help.open && event.key !== "?") { return; }
    var handled = true;
    switch (event.key) {
      case "/":
        if (!focusField("id_q") && announcer) {
          window.location.href = announcer.getAttribute("data-search-url");
        }
        break;
      case "j": move(1); break;
      case "k": move(-1); break;
      case "o": openCurrent(""); break;
      case "a": assignToMe(); break;
      case "r": if (!focusField("id_reply_body")) { openCurrent("#id_reply_body"); } break;
      case "n": if (!focusField("id_note_body")) { openCurrent("#id_note_body"); } break;
      case "?":
        if (help && help.open) { help.close(); } else if (help && help.showModal) { help.showModal(); }
        break;
      default: handled = false;
    }
    if (handled) { event.preventDefault(); }
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
