/* signalkit browser relay client: sends expand/collapse, actions, feedback and corrections
 * for AI recommendations to a signalkit relay endpoint (POST /signals by default).
 *
 *   <script src="/signals.js" data-endpoint="/signals" defer></script>
 *   <div data-signalkit-token="sk1....">
 *     <details data-signalkit-toggle="sources">...</details>          expand / collapse + dwell
 *     <button data-signalkit-action="accepted">Use this</button>      action on click
 *     <button data-signalkit-feedback="1">👍</button>                  rating on (-1, 1)
 *   </div>
 *   signalkit.correction(token, original, edited)                     from your own code
 *
 * Each signal carries age_ms (how long before sending it happened, by this page's monotonic
 * clock) so the server dates it on its own clock, and a random sid so a resend is not counted
 * twice. Signals are batched, sent with fetch (keepalive) or sendBeacon when the page is
 * hidden, retried on network errors, 429 and 5xx, and dropped with a console warning on other
 * 4xx. The queue is bounded.
 */
(function (global) {
  "use strict";
  var script = document.currentScript;
  var config = {
    endpoint: (script && script.getAttribute("data-endpoint")) || "/signals",
    flushMs: 1000,
    maxBatch: 50,
    maxQueue: 500,
  };
  var queue = [];
  var timer = null;
  var backoffMs = 1000;
  var inflight = false;
  var opened = new WeakMap(); // element -> performance.now() when it was expanded

  function sid() {
    var a = new Uint8Array(12);
    (global.crypto || global.msCrypto).getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function enqueue(kind, token, fields) {
    if (!token) { console.warn("signalkit: signal without a token ignored"); return; }
    var s = { kind: kind, token: token, sid: sid(), _t: performance.now() };
    for (var k in fields) if (fields[k] !== undefined && fields[k] !== null) s[k] = fields[k];
    if (queue.length >= config.maxQueue) { queue.shift(); console.warn("signalkit: queue full, oldest signal dropped"); }
    queue.push(s);
    schedule(config.flushMs);
  }

  function schedule(ms) {
    if (timer === null) timer = setTimeout(function () { timer = null; flush(); }, ms);
  }

  function body(batch) {
    var now = performance.now();
    return JSON.stringify({
      signals: batch.map(function (s) {
        var out = {};
        for (var k in s) if (k !== "_t") out[k] = s[k];
        out.age_ms = Math.max(0, Math.round(now - s._t));
        return out;
      }),
    });
  }

  function flush(useBeacon) {
    if (!queue.length || (inflight && !useBeacon)) return Promise.resolve();
    var batch = queue.splice(0, config.maxBatch);
    if (useBeacon && navigator.sendBeacon) {
      var blob = new Blob([body(batch)], { type: "text/plain;charset=UTF-8" });
      if (navigator.sendBeacon(config.endpoint, blob)) return Promise.resolve();
    }
    inflight = true;
    return fetch(config.endpoint, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: body(batch),
      credentials: "same-origin",
      keepalive: true,
    }).then(function (r) {
      inflight = false;
      if (r.status === 429 || r.status >= 500) throw new Error("retry " + r.status);
      backoffMs = 1000;
      if (r.status >= 400) {
        return r.json().then(function (j) { console.warn("signalkit: relay refused signals", r.status, j); }, function () {});
      }
      if (queue.length) schedule(0);
    }).catch(function () {
      inflight = false;
      queue = batch.concat(queue).slice(0, config.maxQueue); // same sids: the relay dedupes
      backoffMs = Math.min(backoffMs * 2, 30000);
      schedule(backoffMs);
    });
  }

  function tokenOf(el) {
    var holder = el.closest("[data-signalkit-token]");
    return holder ? holder.getAttribute("data-signalkit-token") : null;
  }

  document.addEventListener("click", function (e) {
    var el = e.target.closest && e.target.closest("[data-signalkit-action],[data-signalkit-feedback]");
    if (!el) return;
    if (el.hasAttribute("data-signalkit-action")) {
      enqueue("action", tokenOf(el), {
        action: el.getAttribute("data-signalkit-action") || "clicked",
        item_id: el.getAttribute("data-signalkit-item") || undefined,
      });
    } else {
      enqueue("feedback", tokenOf(el), { rating: Number(el.getAttribute("data-signalkit-feedback")) });
    }
  }, true);

  document.addEventListener("toggle", function (e) {
    var el = e.target;
    if (!el.hasAttribute || !el.hasAttribute("data-signalkit-toggle")) return;
    var fields = { element: el.getAttribute("data-signalkit-toggle") || undefined };
    if (el.open) {
      opened.set(el, performance.now());
      fields.state = "expanded";
    } else {
      fields.state = "collapsed";
      if (opened.has(el)) fields.dwell_ms = Math.round(performance.now() - opened.get(el));
      opened.delete(el);
    }
    enqueue("toggle", tokenOf(el), fields);
  }, true);

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") while (queue.length) flush(true);
  });
  global.addEventListener("pagehide", function () { while (queue.length) flush(true); });

  global.signalkit = {
    config: config,
    action: function (token, action, opts) {
      enqueue("action", token, { action: action || "clicked", item_id: opts && opts.itemId });
    },
    toggle: function (token, state, opts) {
      enqueue("toggle", token, { state: state, element: opts && opts.element, dwell_ms: opts && opts.dwellMs });
    },
    feedback: function (token, rating, opts) {
      enqueue("feedback", token, {
        rating: rating, scale: opts && opts.scale, choice: opts && opts.choice, comment: opts && opts.comment,
      });
    },
    correction: function (token, original, corrected) {
      enqueue("correction", token, { original: original, corrected: corrected });
    },
    flush: function () { if (timer !== null) { clearTimeout(timer); timer = null; } return flush(); },
    pending: function () { return queue.length; },
  };
})(window);
