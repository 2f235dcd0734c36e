/*
 * The human-agent console: sign in, work the queue (take / reply / return to bot / close),
 * curated answers, review queue, summary. Talks only to /v1/console on this server; live
 * updates come from the /v1/console/events EventSource (the login cookie authenticates it),
 * with a slow poll as a fallback. Server text is only ever set as textContent.
 */
(function () {
  "use strict";

  var $ = function (id) { return document.getElementById(id); };
  var TOKEN_KEY = "glm-console-token";
  var EVENT_TYPES = [
    "waiting", "taken", "released", "closed", "customer_message", "reply", "message",
    "status", "queue", "handoff", "review",
  ];
  var state = {
    token: sessionStorage.getItem(TOKEN_KEY), user: null, queue: [], fetchedAt: 0,
    selected: null, detail: null, es: null, poll: null, tick: null, refreshTimer: null,
  };

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "class") node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  }

  function api(path, opts) {
    opts = opts || {};
    var headers = { Accept: "application/json" };
    if (opts.body !== undefined) headers["Content-Type"] = "application/json";
    if (state.token) headers.Authorization = "Bearer " + state.token;
    return fetch(path, {
      method: opts.method || "GET", headers: headers, credentials: "same-origin",
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    }).then(function (r) {
      if (r.status === 401 && !opts.login) { signedOut(); throw new Error("signed out"); }
      return r.text().then(function (text) {
        var body = null;
        try { body = text ? JSON.parse(text) : null; } catch (e) { body = text; }
        if (!r.ok) {
          var err = body && body.error ? body.error.message : body && body.detail ? body.detail : null;
          throw new Error(typeof err === "string" ? err : "HTTP " + r.status);
        }
        return body;
      });
    });
  }

  function fmtWait(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    var mm = (h ? String(m).padStart(2, "0") : String(m)) + "m " + String(s).padStart(2, "0") + "s";
    return h ? h + "h " + mm : mm;
  }
  var STATUS = { waiting_human: "waiting", with_human: "with agent", bot: "bot", closed: "closed" };
  function fmtTime(ts) {
    if (!ts) return "";
    return new Date(typeof ts === "number" ? ts * 1000 : ts).toLocaleTimeString();
  }

  // --- sign in / out ---------------------------------------------------------------------
  function signedIn(user) {
    state.user = user;
    $("login-view").hidden = true;
    $("tabs").hidden = false;
    $("who").hidden = false;
    $("who-name").textContent = user || "";
    showTab(location.hash.replace("#", "") || "queue", false);
    listen();
    clearInterval(state.poll);
    state.poll = setInterval(refresh, 10000);
    clearInterval(state.tick);
    state.tick = setInterval(updateWaits, 1000);
  }
  function signedOut() {
    state.token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    if (state.es) state.es.close();
    state.es = null;
    clearInterval(state.poll);
    clearInterval(state.tick);
    ["tabs", "who", "view-queue", "view-curated", "view-review", "view-summary"].forEach(function (id) {
      $(id).hidden = true;
    });
    $("login-view").hidden = false;
    $("username").focus();
  }

  $("login-form").addEventListener("submit", function (e) {
    e.preventDefault();
    $("login-error").textContent = "";
    var user = $("username").value.trim();
    api("/v1/console/login", { method: "POST", body: { username: user, password: $("password").value }, login: true })
      .then(function (body) {
        state.token = body.token;
        sessionStorage.setItem(TOKEN_KEY, body.token);
        sessionStorage.setItem(TOKEN_KEY + ":user", user);
        $("password").value = "";
        signedIn(user);
      })
      .catch(function (err) {
        $("login-error").textContent = "Sign in failed: " + err.message;
        $("password").select();
      });
  });
  $("logout").addEventListener("click", function () {
    // Revoke the token on the server too: a copy of it must stop working now, not in 12 h.
    api("/v1/console/logout", { method: "POST" }).catch(function () { /* already gone */ })
      .then(signedOut);
  });

  // --- tabs ------------------------------------------------------------------------------
  var TABS = ["queue", "curated", "review", "summary"];
  function showTab(name, focus) {
    if (TABS.indexOf(name) < 0) name = "queue";
    TABS.forEach(function (t) {
      var tab = $("tab-" + t);
      tab.setAttribute("aria-selected", String(t === name));
      tab.tabIndex = t === name ? 0 : -1;
      $("view-" + t).hidden = t !== name;
    });
    if (focus) $("tab-" + name).focus();
    history.replaceState(null, "", "#" + name);
    ({ queue: refresh, curated: loadCurated, review: loadReview, summary: loadSummary })[name]();
  }
  TABS.forEach(function (t, i) {
    var tab = $("tab-" + t);
    tab.addEventListener("click", function () { showTab(t, false); });
    tab.addEventListener("keydown", function (e) {
      var step = e.key === "ArrowRight" ? 1 : e.key === "ArrowLeft" ? -1 : 0;
      if (step) showTab(TABS[(i + step + TABS.length) % TABS.length], true);
    });
  });

  // --- queue -----------------------------------------------------------------------------
  function refresh() {
    if (!state.token && !state.user) return Promise.resolve();
    return api("/v1/console/queue").then(function (items) {
      state.queue = items || [];
      state.fetchedAt = Date.now();
      renderQueue();
      if (state.selected) return loadDetail(state.selected);
    }).catch(function () { /* shown by the next successful refresh */ });
  }

  function renderQueue() {
    var list = $("queue");
    list.textContent = "";
    var waiting = 0;
    state.queue.forEach(function (item) {
      if (item.status === "waiting_human") waiting += 1;
      var ticket = item.ticket || {};
      var btn = el("button", { type: "button", "data-id": item.conversation_id, "aria-current": String(item.conversation_id === state.selected) }, [
        el("span", { class: "row1" }, [
          el("span", { class: "pill " + item.status, text: STATUS[item.status] || item.status }),
          item.status === "waiting_human"
            ? el("span", { class: "wait", "data-wait": String(item.waiting_seconds || 0), text: fmtWait(item.waiting_seconds || 0) })
            : el("span", { class: "muted", text: item.assigned_to ? "with " + item.assigned_to : "" }),
        ]),
        el("span", { class: "last", text: item.last_message || ticket.reason || "(no message)" }),
        el("span", { class: "muted", text: (item.channel || "") + " · " + item.conversation_id.slice(0, 8) }),
      ]);
      btn.addEventListener("click", function () { select(item.conversation_id); });
      list.appendChild(el("li", {}, [btn]));
    });
    $("queue-empty").hidden = state.queue.length > 0;
    $("queue-count").textContent = waiting ? String(waiting) : "";
    document.title = (waiting ? "(" + waiting + ") " : "") + "Support console";
  }

  function updateWaits() {
    var extra = (Date.now() - state.fetchedAt) / 1000;
    document.querySelectorAll("#queue .wait").forEach(function (node) {
      node.textContent = fmtWait(Number(node.dataset.wait) + extra);
    });
  }

  function select(id) {
    state.selected = id;
    document.querySelectorAll("#queue button").forEach(function (b) {
      b.setAttribute("aria-current", String(b.dataset.id === id));
    });
    loadDetail(id).then(function () { $("reply-text").focus(); });
  }

  function loadDetail(id) {
    return api("/v1/console/conversations/" + encodeURIComponent(id)).then(function (d) {
      if (state.selected !== id) return;
      state.detail = d;
      renderDetail(d);
    }).catch(function (err) { $("detail-error").textContent = err.message; });
  }

  function whoOf(m) {
    if (m.role === "customer" || m.role === "user") return "Customer";
    if (m.role === "human") return m.agent ? "Agent " + m.agent : "Agent";
    if (m.role === "bot") return m.source === "curated" ? "Bot (curated answer)" : "Bot";
    return "";
  }

  // A customer's photos, served by the console's own media route (same origin, login cookie);
  // each opens full size in a new tab.
  function photos(conversationId, images) {
    if (!images || !images.length) return null;
    return el("div", { class: "photos" }, images.map(function (p, i) {
      var src = "/v1/console/conversations/" + encodeURIComponent(conversationId) + "/media/" +
        encodeURIComponent(p.id);
      var label = "Customer photo " + (i + 1) + (p.width ? " (" + p.width + "\u00d7" + p.height + ")" : "");
      return el("a", { href: src, target: "_blank", rel: "noopener", title: label }, [
        el("img", { src: src, alt: label, loading: "lazy" }),
      ]);
    }));
  }

  function renderDetail(d) {
    $("detail-empty").hidden = true;
    $("detail-body").hidden = false;
    $("detail-error").textContent = "";
    $("detail-title").textContent = "Conversation " + d.conversation_id.slice(0, 8);
    var meta = [STATUS[d.status] || d.status, d.channel,
      d.verified_customer ? "verified customer " + d.verified_customer : "not verified",
      d.assigned_to ? "assigned to " + d.assigned_to : null];
    $("detail-meta").textContent = meta.filter(Boolean).join(" · ");
    var ticket = d.ticket;
    $("ticket").hidden = !ticket;
    var notes = (d.notes || []).map(function (n) {
      return "\u2022 " + (n.tool ? n.tool + " " + (n.status || "") + ": " : n.type + ": ") +
        (n.detail || n.customer_id || "");
    });
    if (ticket) {
      $("ticket").textContent = "Ticket #" + ticket.id + " — " + (ticket.reason || "handoff") +
        (ticket.summary ? "\n" + ticket.summary : "") + (notes.length ? "\n" + notes.join("\n") : "");
    } else if (notes.length) {
      $("ticket").hidden = false;
      $("ticket").textContent = notes.join("\n");
    }
    var log = $("transcript");
    var stick = log.scrollHeight - log.scrollTop - log.clientHeight < 60;
    log.textContent = "";
    (d.messages || []).forEach(function (m) {
      var kind = m.role === "user" ? "customer" : m.role;
      var who = whoOf(m);
      log.appendChild(el("li", { class: kind, "data-id": String(m.id), title: fmtTime(m.ts) }, [
        who ? el("span", { class: "who", text: who }) : null,
        el("span", { class: "text", text: m.text || "" }),
        photos(d.conversation_id, m.images),
      ]));
    });
    if (stick || log.dataset.conv !== d.conversation_id) log.scrollTop = log.scrollHeight;
    log.dataset.conv = d.conversation_id;
    var mine = d.status === "with_human" && d.assigned_to === state.user;
    $("take").hidden = mine || d.status === "closed";
    $("release").hidden = d.status === "bot" || d.status === "closed";
    $("close").hidden = d.status === "closed";
    $("reply-form").hidden = d.status === "closed";
  }

  function act(action) {
    var id = state.selected;
    if (!id) return Promise.resolve();
    $("detail-error").textContent = "";
    return api("/v1/console/conversations/" + encodeURIComponent(id) + "/" + action, { method: "POST" })
      .then(refresh)
      .catch(function (err) { $("detail-error").textContent = action + " failed: " + err.message; });
  }
  $("take").addEventListener("click", function () { act("take").then(function () { $("reply-text").focus(); }); });
  $("release").addEventListener("click", function () { act("release"); });
  $("close").addEventListener("click", function () { act("close"); });

  $("reply-form").addEventListener("submit", function (e) {
    e.preventDefault();
    var box = $("reply-text");
    var text = box.value.trim();
    if (!text || !state.selected) return;
    // Cleared at once, so the agent can type the next message while this one is on its way.
    box.value = "";
    api("/v1/console/conversations/" + encodeURIComponent(state.selected) + "/reply", { method: "POST", body: { text: text } })
      .then(refresh)
      .catch(function (err) {
        $("detail-error").textContent = "Reply failed: " + err.message;
        if (!box.value) box.value = text; // give the unsent text back
      });
  });
  $("reply-text").addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      $("reply-form").requestSubmit();
    }
  });

  // --- live updates ----------------------------------------------------------------------
  function listen() {
    if (state.es) state.es.close();
    var es = new EventSource("/v1/console/events");
    state.es = es;
    function onEvent(ev) {
      var payload = {};
      try { payload = JSON.parse(ev.data || "{}"); } catch (e) { /* keep {} */ }
      // Bursts (take + reply + status) collapse into one refresh.
      clearTimeout(state.refreshTimer);
      state.refreshTimer = setTimeout(function () {
        if (!$("view-queue").hidden || payload.type === "waiting") refresh();
        if (!$("view-review").hidden && payload.type === "review") loadReview();
      }, 100);
    }
    es.onmessage = onEvent;
    EVENT_TYPES.forEach(function (t) { es.addEventListener(t, onEvent); });
    es.onopen = function () { $("live").classList.add("on"); };
    es.onerror = function () { $("live").classList.remove("on"); };
  }

  // --- curated answers -------------------------------------------------------------------
  function clearCuratedForm() {
    $("curated-id").value = "";
    $("curated-question").value = "";
    $("curated-answer").value = "";
    $("curated-variants").value = "";
    $("curated-form-title").textContent = "New curated answer";
    $("curated-error").textContent = "";
  }
  function loadCurated() {
    return api("/v1/console/curated").then(function (items) {
      var list = $("curated-list");
      list.textContent = "";
      (items || []).forEach(function (c) {
        var edit = el("button", { type: "button", text: "Edit", "aria-label": "Edit answer to: " + c.question });
        var del = el("button", { type: "button", class: "danger", text: "Delete", "aria-label": "Delete answer to: " + c.question });
        edit.addEventListener("click", function () {
          $("curated-id").value = String(c.id);
          $("curated-question").value = c.question;
          $("curated-answer").value = c.answer;
          $("curated-variants").value = (c.variants || []).join("\n");
          $("curated-form-title").textContent = "Edit curated answer #" + c.id;
          $("curated-question").focus();
        });
        del.addEventListener("click", function () {
          if (!confirm("Delete the curated answer to \u201c" + c.question + "\u201d?")) return;
          api("/v1/console/curated/" + c.id, { method: "DELETE" }).then(loadCurated);
        });
        list.appendChild(el("li", { "data-id": String(c.id) }, [
          el("div", { class: "q", text: c.question }),
          el("div", { class: "a", text: c.answer }),
          (c.variants || []).length ? el("div", { class: "meta", text: "Also: " + c.variants.join(" · ") }) : null,
          el("div", { class: "actions" }, [edit, del]),
        ]));
      });
    }).catch(function (err) { $("curated-error").textContent = err.message; });
  }
  $("curated-form").addEventListener("submit", function (e) {
    e.preventDefault();
    var id = $("curated-id").value;
    var body = {
      question: $("curated-question").value.trim(),
      answer: $("curated-answer").value.trim(),
      variants: $("curated-variants").value.split("\n").map(function (v) { return v.trim(); }).filter(Boolean),
    };
    api(id ? "/v1/console/curated/" + id : "/v1/console/curated", { method: id ? "PUT" : "POST", body: body })
      .then(function () { clearCuratedForm(); return loadCurated(); })
      .catch(function (err) { $("curated-error").textContent = "Save failed: " + err.message; });
  });
  $("curated-cancel").addEventListener("click", clearCuratedForm);

  // --- review queue ----------------------------------------------------------------------
  var KINDS = { thumbs_down: "Thumbs down", thumbs_up: "Thumbs up", human_answer: "Agent answer" };
  function loadReview() {
    return api("/v1/console/review").then(function (items) {
      var list = $("review-list");
      list.textContent = "";
      $("review-empty").hidden = (items || []).length > 0;
      (items || []).forEach(function (r) {
        var promote = el("button", { type: "button", class: "primary", text: "Promote to curated answer" });
        var item = el("li", { "data-id": String(r.id), "data-kind": r.kind || "", "data-conversation": String(r.conversation_id || "") }, [
          el("div", { class: "meta", text: (KINDS[r.kind] || r.kind || "") + " · conversation " + String(r.conversation_id || "").slice(0, 8) + " · " + fmtTime(r.created_at) }),
          el("div", { class: "q", text: "Q: " + (r.question || "") }),
          el("div", { class: "a", text: "A: " + (r.answer || "") }),
          r.comment ? el("div", { class: "meta", text: "Comment: " + r.comment }) : null,
          el("div", { class: "actions" }, [promote]),
        ]);
        promote.addEventListener("click", function () { promoteForm(item, r, promote); });
        list.appendChild(item);
      });
    }).catch(function () { /* signed out or offline */ });
  }
  function promoteForm(item, r, button) {
    button.hidden = true;
    var q = el("input", { "aria-label": "Question" });
    q.value = r.question || "";
    var a = el("textarea", { "aria-label": "Answer", rows: "3" });
    a.value = r.answer || "";
    var v = el("textarea", { "aria-label": "Other ways to ask it (one per line)", rows: "2" });
    var err = el("p", { class: "error", role: "alert" });
    var form = el("form", {}, [
      el("label", { text: "Question" }, [q]), el("label", { text: "Answer" }, [a]),
      el("label", { text: "Other ways to ask it (one per line)" }, [v]), err,
      el("button", { type: "submit", class: "primary", text: "Save as curated answer" }),
    ]);
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      api("/v1/console/review/" + r.id + "/promote", {
        method: "POST",
        body: { question: q.value.trim(), answer: a.value.trim(), variants: v.value.split("\n").map(function (s) { return s.trim(); }).filter(Boolean) },
      }).then(loadReview).catch(function (e2) { err.textContent = "Promote failed: " + e2.message; });
    });
    item.appendChild(form);
    a.focus();
  }

  // --- summary ---------------------------------------------------------------------------
  function loadSummary() {
    return api("/v1/console/summary").then(function (s) {
      var dl = $("summary");
      dl.textContent = "";
      Object.keys(s || {}).forEach(function (k) {
        var v = s[k];
        if (v !== null && typeof v === "object") return;
        // No data yet (no ratings, no conversations): a dash, never "null".
        var shown = v === null || v === undefined ? "\u2014"
          : typeof v === "number" && /rate/.test(k) && v <= 1
          ? (v * 100).toFixed(1) + "%" : typeof v === "number" ? String(Math.round(v * 100) / 100) : String(v);
        dl.appendChild(el("div", {}, [el("dt", { text: k.replace(/_/g, " ") }), el("dd", { text: shown })]));
      });
    }).catch(function () { /* signed out or offline */ });
  }

  // --- start -----------------------------------------------------------------------------
  // A stored token (or the login cookie) may still be valid: try it before showing the form.
  // Only a token of this tab counts, so "Sign out" stays signed out after a reload.
  state.user = sessionStorage.getItem(TOKEN_KEY + ":user");
  if (!state.token) signedOut();
  else api("/v1/console/queue", { login: true })
    .then(function () { signedIn(state.user); })
    .catch(function () { state.user = null; signedOut(); });
})();
