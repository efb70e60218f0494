/* fieldwatch desk — the pages' own script (no library).
 *
 * 1. Forms with data-action are sent as JSON by fetch (the server takes JSON only), with the
 *    CSRF token of <meta name="csrf-token"> as the `csrf` field and the X-CSRF-Token header.
 * 2. Live updates: poll data-live-url every data-poll seconds; when its version changes,
 *    fetch this page again and swap each [data-live] element in place (skipping one where the
 *    user is typing).
 * 3. Sections with data-load are filled from that URL after the page has loaded.
 * 4. Chart tooltips: the nearest point of every series under the pointer, read back from the
 *    drawn polylines through the chart's scales (data-t0…data-y1).
 * Nothing here writes server data as HTML: messages go through textContent; swapped parts
 * are the server's own escaped HTML.
 */
(function () {
  "use strict";

  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  function toast(text) {
    var box = document.getElementById("toast");
    if (!box) return;
    box.textContent = text;
    box.classList.add("show");
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { box.classList.remove("show"); }, 2500);
  }

  function formBody(form, submitter) {
    var data = new FormData(form, submitter || undefined);
    var out = {};
    data.forEach(function (value, key) {
      if (value === "") return;  // an empty field is an absent one
      if (Object.prototype.hasOwnProperty.call(out, key)) {
        out[key] = [].concat(out[key], value);
      } else {
        out[key] = value;
      }
    });
    out.csrf = csrf();
    return out;
  }

  function detail(body, status) {
    var d = body && body.detail;
    if (typeof d === "string") return d;
    if (Array.isArray(d) && d.length) {
      return d.map(function (e) { return (e.loc || []).slice(1).join(".") + ": " + e.msg; })
        .join("; ");
    }
    return "HTTP " + status;
  }

  async function send(form, submitter) {
    var msg = form.querySelector("output.msg");
    var body = JSON.stringify(formBody(form, submitter));  // before the buttons are disabled
    var buttons = form.querySelectorAll("button");
    buttons.forEach(function (b) { b.disabled = true; });
    if (msg) { msg.textContent = ""; msg.classList.remove("error"); }
    try {
      var res = await fetch(form.dataset.action, {
        method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf()},
        body: body
      });
      var answer = {};
      try { answer = await res.json(); } catch (e) { answer = {}; }
      if (!res.ok) {
        var text = detail(answer, res.status);
        if (msg) { msg.textContent = text; msg.classList.add("error"); } else { toast(text); }
        return;
      }
      var then = form.dataset.then;
      if (then === "go" && answer.url) { location.assign(answer.url); return; }
      if (then === "reload") { location.reload(); return; }
      form.reset();
      await refresh(true);
      toast("✓");
    } catch (e) {
      if (msg) { msg.textContent = String(e); msg.classList.add("error"); }
    } finally {
      buttons.forEach(function (b) { b.disabled = false; });
    }
  }

  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.action) return;
    ev.preventDefault();
    send(form, ev.submitter);
  });

  document.addEventListener("click", function (ev) {
    var t = ev.target;
    if (t instanceof Element && t.closest("[data-print]")) window.print();
  });

  /* -- live updates ------------------------------------------------------------------------- */

  function dirty(el) {
    var active = document.activeElement;
    if (active && el.contains(active) && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName)) {
      return true;
    }
    var fields = el.querySelectorAll("input:not([type=hidden]), textarea");
    for (var i = 0; i < fields.length; i++) {
      var f = fields[i];
      if ((f.type === "radio" || f.type === "checkbox") ? f.checked !== f.defaultChecked
          : f.value !== f.defaultValue) return true;
    }
    return false;
  }

  var refreshing = false;
  async function refresh(force) {
    if (refreshing) return;
    refreshing = true;
    try {
      var res = await fetch(location.href, {credentials: "same-origin",
                                            headers: {"Accept": "text/html"}});
      if (!res.ok) return;
      var doc = new DOMParser().parseFromString(await res.text(), "text/html");
      document.querySelectorAll("[data-live][id]").forEach(function (el) {
        var fresh = doc.getElementById(el.id);
        if (!fresh || (!force && dirty(el))) return;
        el.replaceWith(document.importNode(fresh, true));
      });
      document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
    } finally {
      refreshing = false;
    }
  }

  var version = null;
  async function poll() {
    try {
      var res = await fetch(document.body.dataset.liveUrl, {credentials: "same-origin"});
      if (!res.ok) return;
      var v = (await res.json()).v;
      if (version !== null && v !== version) await refresh(false);
      version = v;
    } catch (e) {
      /* the server is restarting or the network is away: the next poll tries again */
    }
  }

  var every = parseFloat(document.body.dataset.poll || "0");
  if (every > 0 && document.body.dataset.liveUrl) {
    poll();
    setInterval(poll, every * 1000);
  }

  /* -- parts loaded after the page ------------------------------------------------------------ */

  document.querySelectorAll("[data-load][id]").forEach(async function (el) {
    try {
      var res = await fetch(el.dataset.load, {credentials: "same-origin"});
      if (!res.ok) return;
      var doc = new DOMParser().parseFromString(await res.text(), "text/html");
      var fresh = doc.getElementById(el.id);
      if (fresh) el.replaceWith(document.importNode(fresh, true));
    } catch (e) {
      /* the placeholder stays */
    }
  });

  /* -- chart tooltips ------------------------------------------------------------------------- */

  var SVG = "http://www.w3.org/2000/svg";

  function utc(t) {
    return new Date(t * 1000).toISOString().slice(0, 16).replace("T", " ") + " UTC";
  }

  function hover(svg, ev) {
    var d = svg.dataset;
    var x0 = +d.x0, x1 = +d.x1, y0 = +d.y0, y1 = +d.y1;
    var t0 = +d.t0, t1 = +d.t1, v0 = +d.v0, v1 = +d.v1;
    var p = svg.createSVGPoint();
    p.x = ev.clientX; p.y = ev.clientY;
    var at = p.matrixTransform(svg.getScreenCTM().inverse());
    var old = svg.querySelector("g.hover");
    if (old) old.remove();
    if (at.x < x0 || at.x > x1) return;
    var lines = [utc(t0 + (at.x - x0) / (x1 - x0) * (t1 - t0))];
    svg.querySelectorAll("g.series").forEach(function (g) {
      var best = null;
      g.querySelectorAll("polyline").forEach(function (pl) {
        for (var i = 0; i < pl.points.numberOfItems; i++) {
          var q = pl.points.getItem(i);
          if (best === null || Math.abs(q.x - at.x) < Math.abs(best.x - at.x)) best = q;
        }
      });
      if (best !== null && Math.abs(best.x - at.x) < 12) {
        var value = v0 + (y0 - best.y) / (y0 - y1) * (v1 - v0);
        lines.push(g.dataset.label + ": " + Number(value.toPrecision(4)));
      }
    });
    var g = document.createElementNS(SVG, "g");
    g.setAttribute("class", "hover");
    var guide = document.createElementNS(SVG, "line");
    guide.setAttribute("x1", at.x); guide.setAttribute("x2", at.x);
    guide.setAttribute("y1", y1); guide.setAttribute("y2", y0);
    g.appendChild(guide);
    var left = at.x > (x0 + x1) / 2;
    var box = document.createElementNS(SVG, "rect");
    g.appendChild(box);
    lines.forEach(function (line, i) {
      var text = document.createElementNS(SVG, "text");
      text.setAttribute("x", left ? at.x - 6 : at.x + 6);
      text.setAttribute("y", y1 + 14 + i * 14);
      text.setAttribute("text-anchor", left ? "end" : "start");
      text.textContent = line;
      g.appendChild(text);
    });
    svg.appendChild(g);
    var texts = g.querySelectorAll("text");
    var tb = texts[0].getBBox();
    texts.forEach(function (t) { tb = union(tb, t.getBBox()); });
    box.setAttribute("x", tb.x - 4); box.setAttribute("y", tb.y - 2);
    box.setAttribute("width", tb.width + 8); box.setAttribute("height", tb.height + 4);
  }

  function union(a, b) {
    var x = Math.min(a.x, b.x), y = Math.min(a.y, b.y);
    return {x: x, y: y, width: Math.max(a.x + a.width, b.x + b.width) - x,
            height: Math.max(a.y + a.height, b.y + b.height) - y};
  }

  document.addEventListener("pointermove", function (ev) {
    var t = ev.target;
    var svg = t instanceof Element ? t.closest("svg.chart.line") : null;
    document.querySelectorAll("svg.chart.line g.hover").forEach(function (g) {
      if (!svg || g.ownerSVGElement !== svg) g.remove();
    });
    if (svg) hover(svg, ev);
  });
})();
