// Tocsin web UI: the live parts of the pages. Everything here improves a
// page that already works without it: forms post plainly, and progress is
// rendered on the server. Text is always set with textContent, never as
// HTML. No inline script exists, so the Content-Security-Policy forbids it.
"use strict";

(function () {
  // fmt fills %s and %d in a catalog message, in order.
  function fmt(format) {
    const args = Array.prototype.slice.call(arguments, 1);
    let i = 0;
    return String(format).replace(/%[sd]/g, function () {
      return i < args.length ? String(args[i++]) : "";
    });
  }

  // --- SMS measurement: a port of tocsin.MeasureSMS (internal/tocsin/sms.go).
  const GSM7_BASIC = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
  const GSM7_EXTENDED = "^{}\\[~]|€\f";
  const gsm7Cost = new Map();
  for (const c of GSM7_BASIC) gsm7Cost.set(c, 1);
  for (const c of GSM7_EXTENDED) gsm7Cost.set(c, 2);

  function segments(n, single, part) {
    if (n === 0) return 0;
    if (n <= single) return 1;
    return Math.ceil(n / part);
  }

  // measureSMS returns {encoding, characters, segments} exactly as the
  // server computes them: GSM-7 septets (160 per message, 153 per part)
  // when every character is in the GSM alphabet, else UTF-16 units as
  // UCS-2 (70, 67).
  function measureSMS(text) {
    let septets = 0;
    let gsm = true;
    for (const c of text) {
      const cost = gsm7Cost.get(c);
      if (cost === undefined) { gsm = false; break; }
      septets += cost;
    }
    if (gsm) {
      return { encoding: "GSM-7", characters: septets, segments: segments(septets, 160, 153) };
    }
    const units = text.length; // JavaScript strings are UTF-16
    return { encoding: "UCS-2", characters: units, segments: segments(units, 70, 67) };
  }
  window.tocsinMeasureSMS = measureSMS; // for tests and the curious

  function setupFilingForm() {
    const form = document.getElementById("filing-form");
    if (!form) return;
    const content = form.querySelector("[data-sms-source]");
    const meter = document.getElementById("sms-meter");
    const preview = document.getElementById("preview-text");
    function update() {
      // The server trims the content before measuring it; so do we.
      const text = content.value.trim();
      const m = measureSMS(text);
      if (m.segments === 0) {
        meter.textContent = meter.dataset.formatEmpty;
      } else {
        let s = fmt(meter.dataset.format, m.encoding, m.characters, m.segments);
        const max = Number(meter.dataset.max);
        if (m.segments > max) s += " — " + fmt(meter.dataset.formatTooLong, max);
        meter.textContent = s;
        meter.classList.toggle("too-long", m.segments > max);
      }
      meter.dataset.segments = String(m.segments);
      meter.dataset.encoding = m.encoding;
      if (preview) preview.textContent = content.value || preview.dataset.placeholder;
    }
    content.addEventListener("input", update);
    update();

    setupEarliest(form);
    setupRegionPicker(form);
  }

  // The earliest permitted send date, from the API, and a live check of
  // the chosen date against it.
  function setupEarliest(form) {
    const box = document.getElementById("earliest");
    const date = document.getElementById("send_date");
    const check = document.getElementById("date-check");
    const emergency = document.getElementById("emergency");
    if (!box || !date || !check) return;
    function verify() {
      const earliest = box.dataset.value;
      check.classList.remove("too-early", "date-ok");
      if (emergency && emergency.checked) { check.textContent = ""; return; }
      if (!earliest || !date.value) { check.textContent = ""; return; }
      if (date.value < earliest) {
        check.textContent = fmt(check.dataset.tooEarly, earliest);
        check.classList.add("too-early");
      } else {
        check.textContent = check.dataset.ok;
        check.classList.add("date-ok");
      }
    }
    date.addEventListener("input", verify);
    date.addEventListener("change", verify);
    if (emergency) emergency.addEventListener("change", verify);
    fetch(box.dataset.src, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (j) {
        if (!j || !j.earliest_send_date) return;
        box.dataset.value = j.earliest_send_date;
        box.dataset.loaded = "true";
        box.textContent = fmt(box.dataset.format, j.earliest_send_date);
        date.min = j.earliest_send_date;
        verify();
      })
      .catch(function () { /* the server-rendered date stays */ });
    verify();
  }

  // Province → prefecture → county, loaded from GET /api/v1/regions, and a
  // list of regions added to the scope.
  function setupRegionPicker(form) {
    const picker = form.querySelector("[data-region-picker]");
    if (!picker) return;
    const src = picker.dataset.regionsSrc;
    const province = document.getElementById("province");
    const prefecture = document.getElementById("prefecture");
    const county = document.getElementById("county");
    const add = document.getElementById("scope-add");
    const list = document.getElementById("scope-list");

    // fill lists parent's children in select. The prefecture list keeps
    // its "choose" option and offers the whole province explicitly (its
    // code as the value): there is no default scope. The county list
    // keeps "whole prefecture".
    function fill(select, parent) {
      select.length = 1;
      select.dataset.loaded = "";
      if (!parent) return Promise.resolve();
      if (select === prefecture) select.add(new Option(select.dataset.all, parent));
      if (select === county && parent === province.value) return Promise.resolve();
      return fetch(src + "?parent=" + encodeURIComponent(parent), { headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : []; })
        .then(function (regions) {
          for (const r of regions) select.add(new Option(r.name, r.code));
          select.dataset.loaded = parent;
        });
    }
    province.addEventListener("change", function () {
      fill(county, "");
      fill(prefecture, province.value);
    });
    prefecture.addEventListener("change", function () { fill(county, prefecture.value); });

    function chosen() {
      const parts = [];
      let code = "";
      for (const s of [province, prefecture, county]) {
        if (s.value && s.value !== code) { code = s.value; parts.push(s.options[s.selectedIndex].text); }
      }
      if (!prefecture.value) return { code: "", name: "" }; // a province alone is no choice
      return { code: code, name: parts.join(" ") };
    }
    add.hidden = false;
    add.addEventListener("click", function () {
      const c = chosen();
      if (!c.code) { (province.value ? prefecture : province).focus(); return; }
      for (const input of list.querySelectorAll("input[name=scope]")) {
        if (input.value === c.code) return;
      }
      const li = document.createElement("li");
      const name = document.createElement("span");
      name.textContent = c.name;
      const code = document.createElement("code");
      code.textContent = c.code;
      const input = document.createElement("input");
      input.type = "hidden"; input.name = "scope"; input.value = c.code;
      const remove = document.createElement("button");
      remove.type = "button"; remove.className = "link"; remove.dataset.remove = "";
      remove.textContent = add.dataset.removeLabel;
      li.append(name, " ", code, input, " ", remove);
      list.append(li);
      requireChoice();
    });
    list.addEventListener("click", function (ev) {
      const b = ev.target.closest("[data-remove]");
      if (b) b.closest("li").remove();
      requireChoice();
    });
    // The selection is the scope only while no region is added: then it
    // must be chosen.
    function requireChoice() {
      prefecture.required = list.querySelector("input[name=scope]") === null;
    }
    requireChoice();
  }

  // --- Live progress over Server-Sent Events.
  function applyProgress(root, p, standalone) {
    const badge = root.querySelector("[data-field='broadcast-status']") ||
      (standalone ? document.getElementById("broadcast-status") : null);
    if (badge) {
      badge.textContent = p.status_label;
      badge.className = "badge status-" + p.status;
      badge.dataset.status = p.status;
    }
    const summary = root.querySelector("[data-field='summary']");
    if (summary) summary.textContent = p.summary;
    let missing = false;
    for (const pv of p.providers) {
      const row = root.querySelector("[data-provider='" + CSS.escape(pv.provider) + "']");
      if (!row) { missing = true; continue; }
      const st = row.querySelector("[data-field='status']");
      st.textContent = pv.status_label;
      st.className = "badge delivery-" + pv.status;
      row.dataset.status = pv.status;
      const bar = row.querySelector("progress");
      bar.max = pv.max;
      bar.value = pv.value;
      row.querySelector("[data-field='counts']").textContent = pv.counts;
      row.querySelector("[data-field='late']").hidden = !pv.late;
    }
    return missing;
  }

  function setupStreams() {
    for (const el of document.querySelectorAll("[data-events]")) {
      const es = new EventSource(el.dataset.events);
      el.dataset.live = "connecting";
      es.addEventListener("open", function () { el.dataset.live = "open"; });
      es.addEventListener("progress", function (ev) {
        const p = JSON.parse(ev.data);
        const before = el.querySelectorAll("[data-provider]").length;
        if (applyProgress(el, p, true) && before === 0) {
          // Released since the page was drawn: draw it again with its providers.
          es.close();
          window.location.reload();
        }
      });
      es.addEventListener("board", function (ev) {
        const d = JSON.parse(ev.data);
        for (const b of d.broadcasts) {
          const card = el.querySelector("[data-broadcast='" + CSS.escape(b.id) + "']");
          if (!card) { const n = document.getElementById("board-new"); if (n) n.hidden = false; continue; }
          applyProgress(card, b, false);
        }
      });
      es.addEventListener("done", function () {
        es.close();
        el.dataset.live = "done";
      });
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupFilingForm();
    setupStreams();
  });
})();
