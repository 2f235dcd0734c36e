/*
 * glm-agent support widget. Embed with one tag:
 *   <script src="https://host/widget.js" data-server="https://host" data-title="Support" async></script>
 * Optional: data-locale="zh|en", data-color="#0b57d0".
 * Shadow DOM, no framework, no requests except to data-server. Answers stream over the SSE
 * response of POST .../messages (fetch + ReadableStream); human replies arrive on the
 * conversation's /events EventSource. conversation_id + customer_token live in localStorage,
 * so a reload resumes the session (the transcript is fetched again).
 * Photos: when the bot takes them (GET /v1/support/info), a camera button attaches up to its
 * limit; each is checked (type, size) and shrunk to 1568 px on its longer side in the browser,
 * then sent with the text as a data: URL in the same POST. Photos already sent are fetched by
 * id with the customer token and shown as data: images (a page's CSP may forbid blob: ones).
 */
(function () {
  "use strict";
  if (window.glmSupport) return; // the tag was included twice

  var script =
    document.currentScript || document.querySelector('script[src*="widget.js"]') || null;
  var data = (script && script.dataset) || {};
  var server = (data.server || (script && script.src ? new URL(script.src).origin : location.origin))
    .replace(/\/+$/, "");
  // The page's data-title, else the bot's own name (GET /v1/support/info), else "Support".
  var title = data.title || "Support";
  // The API speaks zh and en: data-locale="zh-CN" or a Chinese browser gets zh.
  var locale = /^zh/i.test(data.locale || navigator.language || "") ? "zh" : "en";
  var STORE = "glm-support:" + server;
  // Only a plain colour goes into the style sheet.
  var accent = /^(#[0-9a-f]{3,8}|[a-z]+|rgba?\([\d\s.,%]+\))$/i.test(data.color || "") ? data.color : "#0b57d0";

  var STRINGS = {
    en: {
      open: "Open support chat", close: "Close chat", send: "Send", message: "Message",
      placeholder: "Type your question…", human: "Talk to a human", helpful: "Helpful",
      unhelpful: "Not helpful", thanks: "Thanks for your feedback.", sources: "Sources",
      bot: "Virtual assistant", waiting_human: "Waiting for a human agent…",
      with_human: "Chatting with {agent}", anAgent: "a human agent",
      closed: "This conversation is closed.", restart: "Start a new conversation",
      error: "Sorry, something went wrong. Please try again.", reconnecting: "Reconnecting…",
      you: "You", assistant: "Assistant", agent: "Agent", unread: "new message", unreadMany: "new messages",
      messages: "Messages", yes: "Yes, go ahead", no: "No, cancel", yesWord: "yes", noWord: "no",
      attach: "Attach a photo", photo: "Photo", removePhoto: "Remove photo",
      badType: "Only JPEG, PNG, WebP or GIF photos can be sent.",
      tooBig: "That photo is too large (the limit is {limit}). Please send a smaller one.",
      tooMany: "You can send up to {n} photos at a time.",
      unreadable: "That photo could not be opened. Please try another.",
    },
    zh: {
      open: "打开客服对话", close: "关闭对话", send: "发送", message: "消息",
      placeholder: "请输入您的问题…", human: "转人工客服", helpful: "有帮助",
      unhelpful: "没有帮助", thanks: "感谢您的反馈。", sources: "来源",
      bot: "智能助手", waiting_human: "正在等待人工客服…",
      with_human: "{agent} 正在为您服务", anAgent: "人工客服",
      closed: "对话已结束。", restart: "开始新的对话",
      error: "抱歉，出错了，请重试。", reconnecting: "正在重新连接…",
      you: "您", assistant: "助手", agent: "客服", unread: "条新消息", unreadMany: "条新消息",
      messages: "消息记录", yes: "确认", no: "取消", yesWord: "确认", noWord: "取消",
      attach: "添加图片", photo: "图片", removePhoto: "移除图片",
      badType: "只能发送 JPEG、PNG、WebP 或 GIF 格式的图片。",
      tooBig: "图片太大了（最大 {limit}），请换一张小一些的图片。",
      tooMany: "一次最多发送 {n} 张图片。",
      unreadable: "这张图片无法打开，请换一张试试。",
    },
  };
  var T = STRINGS[locale];

  var CSS = [
    ":host{all:initial}",
    "*{box-sizing:border-box}",
    ".root{--accent:" + accent + ";font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'PingFang SC','Microsoft YaHei',sans-serif;color:#1f1f1f}",
    "button{font:inherit;cursor:pointer}",
    "button:focus-visible,a:focus-visible{outline:3px solid #f4b400;outline-offset:2px}",
    "textarea:focus{outline:2px solid var(--accent);outline-offset:-1px;border-color:var(--accent)}",
    ".launcher{position:fixed;right:20px;bottom:20px;width:56px;height:56px;border-radius:50%;border:0;background:var(--accent);color:#fff;box-shadow:0 4px 14px rgba(0,0,0,.25);display:flex;align-items:center;justify-content:center;z-index:2147483000}",
    ".launcher svg{width:28px;height:28px}",
    ".badge{position:absolute;top:-2px;right:-2px;min-width:20px;height:20px;padding:0 5px;border-radius:10px;background:#d93025;color:#fff;font-size:12px;line-height:20px;text-align:center}",
    ".panel{position:fixed;right:20px;bottom:88px;width:380px;height:min(600px,calc(100vh - 110px));display:flex;flex-direction:column;background:#fff;border-radius:14px;box-shadow:0 10px 40px rgba(0,0,0,.28);overflow:hidden;z-index:2147483001}",
    ".panel[hidden]{display:none}",
    "header{display:flex;align-items:center;gap:8px;padding:12px 12px 10px 16px;background:var(--accent);color:#fff}",
    "header .titles{flex:1;min-width:0}",
    "header h2{margin:0;font-size:16px;font-weight:600;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}",
    ".status{font-size:12px;opacity:.92;overflow-wrap:anywhere}",
    ".icon{background:transparent;border:0;color:inherit;width:36px;height:36px;border-radius:8px;display:flex;align-items:center;justify-content:center;flex:none}",
    ".icon:hover{background:rgba(255,255,255,.18)}",
    ".log{flex:1;overflow-y:auto;overflow-x:hidden;padding:14px 12px;display:flex;flex-direction:column;gap:10px;background:#f6f8fc}",
    ".msg{max-width:85%;padding:9px 12px;border-radius:14px;white-space:pre-wrap;overflow-wrap:anywhere;word-break:break-word}",
    ".msg.customer{align-self:flex-end;background:var(--accent);color:#fff;border-bottom-right-radius:4px}",
    ".msg.bot,.msg.human{align-self:flex-start;background:#fff;border:1px solid #dde3ea;border-bottom-left-radius:4px}",
    ".msg.human{border-color:#a8c7fa;background:#eef4ff}",
    ".msg.system{align-self:center;max-width:95%;background:transparent;color:#5f6368;font-size:12px;text-align:center;padding:2px 8px}",
    ".who{display:block;font-size:11px;font-weight:600;color:#5f6368;margin-bottom:2px}",
    ".msg.customer .who{color:rgba(255,255,255,.85)}",
    ".msg.streaming .text::after{content:'▍';animation:blink 1s steps(1) infinite}",
    ".msg.typing .text::after{content:'…'}",
    "@keyframes blink{50%{opacity:0}}",
    ".msg a{color:inherit;text-decoration:underline}",
    ".msg code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.92em;background:rgba(0,0,0,.06);padding:0 3px;border-radius:4px}",
    ".cites{margin:6px 0 0;padding:6px 0 0;border-top:1px solid #e8eaed;font-size:12px;color:#5f6368;list-style:none}",
    ".cites a{color:var(--accent)}",
    ".rate{display:flex;gap:4px;margin-top:6px;align-items:center;font-size:12px;color:#5f6368}",
    ".rate button{border:1px solid #dde3ea;background:#fff;border-radius:8px;min-width:32px;height:28px;padding:0 6px}",
    ".rate button{display:inline-flex;align-items:center;justify-content:center;color:#5f6368}",
    ".rate .down svg{transform:rotate(180deg)}",
    ".rate button[aria-pressed=true]{background:#e8f0fe;border-color:var(--accent);color:var(--accent)}",
    ".rate button:disabled{cursor:default}",
    ".quick{display:flex;gap:6px;margin-top:8px;flex-wrap:wrap}",
    ".quick button{border:1px solid var(--accent);color:var(--accent);background:#fff;border-radius:14px;padding:3px 12px}",
    ".quick button:first-child{background:var(--accent);color:#fff}",
    ".actions{display:flex;justify-content:center;padding:6px 12px 0;background:#fff}",
    ".actions button{border:1px solid var(--accent);color:var(--accent);background:#fff;border-radius:16px;padding:4px 14px;font-size:13px}",
    ".actions button[hidden]{display:none}",
    "form{display:flex;gap:8px;align-items:flex-end;padding:10px 12px 12px;background:#fff;border-top:1px solid #e8eaed}",
    "textarea{flex:1;min-width:0;resize:none;height:42px;max-height:120px;padding:10px 12px;border:1px solid #c4c7c5;border-radius:12px;font:inherit;color:inherit}",
    ".send{flex:none;height:42px;padding:0 16px;border:0;border-radius:12px;background:var(--accent);color:#fff;font-weight:600}",
    ".send:disabled{opacity:.5;cursor:default}",
    ".sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}",
    ".attach{flex:none;width:42px;height:42px;border:1px solid #c4c7c5;border-radius:12px;background:#fff;color:#444746;display:flex;align-items:center;justify-content:center}",
    ".attach[hidden],.tray[hidden]{display:none}",
    ".tray{display:flex;gap:8px;padding:8px 12px 0;background:#fff;flex-wrap:wrap}",
    ".thumb{position:relative;width:56px;height:56px}",
    ".thumb img{width:56px;height:56px;object-fit:cover;border-radius:8px;border:1px solid #dde3ea}",
    ".thumb button{position:absolute;top:-6px;right:-6px;width:22px;height:22px;border-radius:50%;border:0;background:#444746;color:#fff;font-size:14px;line-height:22px;padding:0}",
    ".photos{display:flex;gap:6px;flex-wrap:wrap;margin-top:4px}",
    ".photos img{max-width:100%;max-height:180px;border-radius:10px;display:block;background:rgba(0,0,0,.06)}",
    // Phone: the panel is the whole screen, the launcher hides behind it.
    "@media (max-width:480px){.panel{inset:0;width:auto;height:auto;border-radius:0}.root.open .launcher{display:none}}",
  ].join("\n");

  var ICON_CHAT =
    '<svg viewBox="0 0 24 24" aria-hidden="true" fill="currentColor"><path d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z"/></svg>';
  // Drawn, not emoji: many systems (and headless browsers) lack an emoji font.
  var ICON_THUMB =
    '<svg viewBox="0 0 24 24" width="16" height="16" aria-hidden="true" fill="currentColor"><path d="M1 21h4V9H1v12zm22-11c0-1.1-.9-2-2-2h-6.31l.95-4.57.03-.32c0-.41-.17-.79-.44-1.06L14.17 1 7.59 7.59C7.22 7.95 7 8.45 7 9v10c0 1.1.9 2 2 2h9c.83 0 1.54-.5 1.84-1.22l3.02-7.05c.09-.23.14-.47.14-.73v-2z"/></svg>';
  var ICON_CAMERA =
    '<svg viewBox="0 0 24 24" width="22" height="22" aria-hidden="true" fill="currentColor"><path d="M9 3 7.17 5H4a2 2 0 0 0-2 2v12a2 2 0 0 0 2 2h16a2 2 0 0 0 2-2V7a2 2 0 0 0-2-2h-3.17L15 3H9zm3 15a5 5 0 1 1 0-10 5 5 0 0 1 0 10zm0-2a3 3 0 1 0 0-6 3 3 0 0 0 0 6z"/></svg>';
  var ICON_CLOSE =
    '<svg viewBox="0 0 24 24" width="22" height="22" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2.2" stroke-linecap="round"><path d="M6 6l12 12M18 6L6 18"/></svg>';

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "class") node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { node.appendChild(c); });
    return node;
  }

  // --- DOM --------------------------------------------------------------------------------
  var host = el("div", { id: "glm-support-widget" });
  var shadow = host.attachShadow({ mode: "open" });
  var sheet = null;
  try {
    // A constructed sheet is not an inline <style>, so a host page's strict CSP still allows it.
    sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    shadow.adoptedStyleSheets = [sheet];
  } catch (e) {
    shadow.appendChild(el("style", { text: CSS }));
  }
  var root = el("div", { class: "root" });
  var launcher = el("button", {
    class: "launcher", type: "button", "aria-label": T.open, "aria-expanded": "false",
    "aria-controls": "glm-panel",
  });
  launcher.innerHTML = ICON_CHAT; // a constant, never server data
  var badge = el("span", { class: "badge", hidden: "" });
  launcher.appendChild(badge);
  var heading = el("h2", { id: "glm-title", text: title });
  // Photos are offered only when the bot takes them; its limits are the server's.
  var PHOTOS = { accepted: false, max_bytes: 2097152, max_per_message: 3, types: [] };
  fetch(server + "/v1/support/info").then(function (r) { return r.ok ? r.json() : null; })
    .then(function (info) {
      var name = info && (info.names && info.names[locale] || info.name);
      if (name && !data.title) heading.textContent = name;
      if (info && info.images && info.images.accepted) {
        PHOTOS = info.images;
        attachBtn.hidden = false;
        picker.setAttribute("accept", PHOTOS.types.join(","));
      }
    }).catch(function () { /* keep the defaults */ });
  var statusLine = el("div", { class: "status", role: "status", text: T.bot });
  var closeBtn = el("button", { class: "icon", type: "button", "aria-label": T.close });
  closeBtn.innerHTML = ICON_CLOSE;
  var log = el("div", { class: "log", role: "log", "aria-live": "polite", "aria-label": T.messages, tabindex: "0" });
  var humanBtn = el("button", { type: "button", class: "human", text: T.human });
  var restartBtn = el("button", { type: "button", class: "restart", text: T.restart, hidden: "" });
  var input = el("textarea", { rows: "1", "aria-label": T.message, placeholder: T.placeholder, maxlength: "4000" });
  var sendBtn = el("button", { class: "send", type: "submit", "aria-label": T.send, text: T.send });
  var attachBtn = el("button", { class: "attach", type: "button", "aria-label": T.attach, title: T.attach, hidden: "" });
  attachBtn.innerHTML = ICON_CAMERA; // a constant, never server data
  var picker = el("input", { type: "file", class: "sr", multiple: "", tabindex: "-1", "aria-hidden": "true" });
  var tray = el("div", { class: "tray", "aria-label": T.photo, hidden: "" });
  var form = el("form", { "aria-label": T.message }, [attachBtn, picker, input, sendBtn]);
  var panel = el("div", { class: "panel", id: "glm-panel", role: "dialog", "aria-labelledby": "glm-title", hidden: "" }, [
    el("header", {}, [el("div", { class: "titles" }, [heading, statusLine]), closeBtn]),
    log,
    el("div", { class: "actions" }, [humanBtn, restartBtn]),
    tray,
    form,
  ]);
  root.appendChild(panel);
  root.appendChild(launcher);
  shadow.appendChild(root);

  // --- state ------------------------------------------------------------------------------
  var state = {
    id: null, token: null, lastSeq: 0, status: "bot", agent: null,
    seen: new Set(), byId: new Map(), streaming: null, sending: false,
    es: null, retry: null, failures: 0, ready: null, unread: 0, held: [], photos: [],
  };

  function save() {
    try {
      localStorage.setItem(STORE, JSON.stringify({ id: state.id, token: state.token, seq: state.lastSeq }));
    } catch (e) { /* storage disabled: the session just won't survive a reload */ }
  }
  function load() {
    try { return JSON.parse(localStorage.getItem(STORE) || "null"); } catch (e) { return null; }
  }

  function api(path, opts) {
    opts = opts || {};
    var headers = { "Content-Type": "application/json" };
    if (state.token) headers["X-Customer-Token"] = state.token;
    return fetch(server + path, {
      method: opts.method || "GET", headers: headers, credentials: "omit",
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    });
  }
  function convPath(suffix) {
    return "/v1/support/conversations/" + encodeURIComponent(state.id) + (suffix || "");
  }

  // --- rendering --------------------------------------------------------------------------
  function nearBottom() { return log.scrollHeight - log.scrollTop - log.clientHeight < 80; }
  function scrollDown(force) { if (force || nearBottom()) log.scrollTop = log.scrollHeight; }

  function roleClass(role) {
    if (role === "customer" || role === "user") return "customer";
    if (role === "human" || role === "agent") return "human";
    if (role === "system") return "system";
    return "bot";
  }
  function whoLabel(kind) {
    return { customer: T.you, human: T.agent, bot: T.assistant }[kind] || "";
  }

  function bubble(kind, agent) {
    var node = el("div", { class: "msg " + kind });
    var who = kind === "human" && agent ? T.agent + " " + agent : whoLabel(kind);
    if (kind !== "system") node.appendChild(el("span", { class: "who", text: who }));
    node.appendChild(el("span", { class: "text" }));
    var stick = nearBottom();
    log.appendChild(node);
    scrollDown(stick);
    return node;
  }
  // A little Markdown for answers, built as DOM nodes (never innerHTML): **bold**, `code`,
  // [text](https://...), bare https:// links, "- " bullets and "#" headings; the rest is text.
  var INLINE = /\*\*([^*\n]+)\*\*|`([^`\n]+)`|\[([^\]\n]+)\]\(([^()\s]*(?:\([^()\s]*\)[^()\s]*)*)\)|https?:\/\/[^\s<>()[\]]*[^\s<>()[\].,;:!?'"\u201d\u2019\uff09\u3002\uff0c]/g;
  function link(text, href) {
    return el("a", { href: href, target: "_blank", rel: "noopener noreferrer", text: text });
  }
  function renderRich(target, text) {
    target.textContent = "";
    text.split("\n").forEach(function (line, i) {
      if (i) target.appendChild(document.createTextNode("\n"));
      var parent = target;
      var heading = /^#{1,6}\s+/.exec(line);
      if (heading) {
        parent = target.appendChild(el("strong"));
        line = line.slice(heading[0].length);
      } else {
        line = line.replace(/^(\s*)[-*]\s+/, "$1\u2022 ");
      }
      var last = 0, m;
      INLINE.lastIndex = 0;
      while ((m = INLINE.exec(line))) {
        if (m.index > last) parent.appendChild(document.createTextNode(line.slice(last, m.index)));
        if (m[1]) parent.appendChild(el("strong", { text: m[1] }));
        else if (m[2]) parent.appendChild(el("code", { text: m[2] }));
        else if (m[3]) {
          // Only web links: a javascript: or data: target stays plain text.
          parent.appendChild(/^https?:\/\//i.test(m[4]) ? link(m[3], m[4]) : document.createTextNode(m[3]));
        } else parent.appendChild(link(m[0], m[0]));
        last = INLINE.lastIndex;
      }
      if (last < line.length) parent.appendChild(document.createTextNode(line.slice(last)));
    });
  }
  function setText(node, text) {
    node._raw = text;
    var target = node.querySelector(".text");
    if (node.classList.contains("customer") || node.classList.contains("system")) target.textContent = text;
    else renderRich(target, text);
  }

  // --- photos ------------------------------------------------------------------------------
  function photoBox(node) {
    var box = node.querySelector(".photos");
    if (!box) box = node.appendChild(el("div", { class: "photos" }));
    return box;
  }
  function addPhoto(node, url) {
    photoBox(node).appendChild(el("img", { src: url, alt: T.photo }));
    scrollDown(false);
  }
  // A stored photo, fetched with the customer token and shown as a data: image.
  function fetchPhoto(node, id) {
    var img = el("img", { alt: T.photo });
    photoBox(node).appendChild(img);
    api(convPath("/media/" + encodeURIComponent(id))).then(function (r) {
      if (!r.ok) throw new Error("photo: HTTP " + r.status);
      return r.blob();
    }).then(function (blob) {
      var reader = new FileReader();
      reader.onload = function () { img.src = String(reader.result); };
      reader.readAsDataURL(blob);
    }).catch(function () { img.alt = T.photo + " (" + T.error + ")"; });
  }
  function fmtLimit(n) {
    return n >= 1048576 ? Math.round(n / 104857.6) / 10 + " MB" : Math.max(1, Math.round(n / 1024)) + " KB";
  }
  function base64Bytes(url) {
    var data = url.slice(url.indexOf(",") + 1);
    return Math.floor(data.length * 3 / 4) - (/==$/.test(data) ? 2 : /=$/.test(data) ? 1 : 0);
  }
  // A chosen file as a data: URL the bot takes: type checked, shrunk to 1568 px on its longer
  // side (JPEG) when it is larger or heavier than the limit.
  function preparePhoto(file) {
    return new Promise(function (resolve, reject) {
      if (PHOTOS.types.indexOf(file.type) < 0) return reject(new Error(T.badType));
      if (file.size > 40 * 1048576) return reject(new Error(T.tooBig.replace("{limit}", fmtLimit(PHOTOS.max_bytes))));
      var reader = new FileReader();
      reader.onerror = function () { reject(new Error(T.unreadable)); };
      reader.onload = function () {
        var original = String(reader.result);
        var img = new Image();
        img.onerror = function () { reject(new Error(T.unreadable)); };
        img.onload = function () {
          var w = img.naturalWidth, h = img.naturalHeight;
          var scale = Math.min(1, 1568 / Math.max(w, h));
          if (scale === 1 && file.size <= PHOTOS.max_bytes) return resolve(original);
          var canvas = document.createElement("canvas");
          canvas.width = Math.max(1, Math.round(w * scale));
          canvas.height = Math.max(1, Math.round(h * scale));
          var ctx = canvas.getContext("2d");
          ctx.fillStyle = "#fff"; // transparent areas of a PNG become white, not black, in JPEG
          ctx.fillRect(0, 0, canvas.width, canvas.height);
          ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
          var quality = [0.85, 0.7, 0.5];
          for (var i = 0; i < quality.length; i++) {
            var url = canvas.toDataURL("image/jpeg", quality[i]);
            if (base64Bytes(url) <= PHOTOS.max_bytes) return resolve(url);
          }
          reject(new Error(T.tooBig.replace("{limit}", fmtLimit(PHOTOS.max_bytes))));
        };
        img.src = original;
      };
      reader.readAsDataURL(file);
    });
  }
  function showTray() {
    tray.textContent = "";
    tray.hidden = !state.photos.length;
    state.photos.forEach(function (url, i) {
      var remove = el("button", { type: "button", "aria-label": T.removePhoto, title: T.removePhoto, text: "\u00d7" });
      remove.addEventListener("click", function () {
        state.photos.splice(i, 1);
        showTray();
        input.focus();
      });
      tray.appendChild(el("div", { class: "thumb" }, [el("img", { src: url, alt: T.photo + " " + (i + 1) }), remove]));
    });
  }
  function notice(text) {
    bubble("system").querySelector(".text").textContent = text;
  }

  function citations(node, cites) {
    var old = node.querySelector(".cites");
    if (old) old.remove();
    if (!cites || !cites.length) return;
    var list = el("ul", { class: "cites", "aria-label": T.sources });
    cites.forEach(function (c, i) {
      var label = "[" + (c.n || i + 1) + "] " + (c.title || c.source || "");
      var item = el("li");
      if (/^https?:\/\//i.test(c.source || "")) {
        item.appendChild(el("a", { href: c.source, target: "_blank", rel: "noopener noreferrer", text: label }));
      } else {
        item.textContent = label;
      }
      list.appendChild(item);
    });
    node.appendChild(list);
  }

  function rating(node, id) {
    if (node.querySelector(".rate")) return;
    var up = el("button", { type: "button", "aria-label": T.helpful, "aria-pressed": "false", title: T.helpful });
    var down = el("button", { type: "button", class: "down", "aria-label": T.unhelpful, "aria-pressed": "false", title: T.unhelpful });
    up.innerHTML = down.innerHTML = ICON_THUMB; // constants, never server data
    var note = el("span", { class: "note", "aria-live": "polite" });
    function rate(value, btn) {
      up.disabled = down.disabled = true;
      btn.setAttribute("aria-pressed", "true");
      api(convPath("/feedback"), { method: "POST", body: { message_id: id, rating: value, comment: null } })
        .then(function (r) {
          if (!r.ok) throw new Error("feedback " + r.status);
          note.textContent = T.thanks;
        })
        .catch(function () {
          up.disabled = down.disabled = false;
          btn.setAttribute("aria-pressed", "false");
          note.textContent = T.error;
        });
    }
    up.addEventListener("click", function () { rate("up", up); });
    down.addEventListener("click", function () { rate("down", down); });
    node.appendChild(el("div", { class: "rate" }, [up, down, note]));
  }

  // The bot asks before a state-changing action: one tap answers (typing works as well).
  function quickReplies(node) {
    var yes = el("button", { type: "button", text: T.yes });
    var no = el("button", { type: "button", text: T.no });
    yes.addEventListener("click", function () { send(T.yesWord); });
    no.addEventListener("click", function () { send(T.noWord); });
    node.appendChild(el("div", { class: "quick" }, [yes, no]));
  }

  function finish(node, m) {
    var kind = roleClass(m.role);
    node.classList.remove("streaming", "typing");
    if (m.text !== undefined && m.text !== null) setText(node, m.text);
    if (m.id !== undefined && m.id !== null) {
      node.dataset.id = String(m.id);
      state.byId.set(String(m.id), node);
    }
    if (m.source) node.dataset.source = m.source;
    if (m.images && m.images.length && !node.querySelector(".photos")) {
      m.images.forEach(function (p) { fetchPhoto(node, p.id); });
    }
    if (m.ts) node.title = new Date(typeof m.ts === "number" ? m.ts * 1000 : m.ts).toLocaleString();
    citations(node, m.citations);
    if (kind === "bot" && m.id !== undefined && m.id !== null && m.source !== "system") rating(node, m.id);
    if (kind === "bot" && m.confirm && m.confirm.length && !node.querySelector(".quick")) {
      quickReplies(node);
    }
    scrollDown(false);
  }

  function showMessage(m) {
    var kind = roleClass(m.role);
    if (m.agent && kind !== "customer") {
      state.agent = m.agent;
      if (state.status === "with_human") setStatus("with_human");
    }
    var key = m.id === undefined || m.id === null ? null : String(m.id);
    if (!key || !state.byId.has(key)) {
      // Any newer message answers (or overtakes) a confirmation question.
      log.querySelectorAll(".quick").forEach(function (q) { q.remove(); });
    }
    if (key && state.byId.has(key)) {
      // Replayed deltas of a message already on screen (resume after a reload): drop them.
      if (state.streaming && !state.sending && kind === "bot") {
        state.streaming.remove();
        state.streaming = null;
      }
      return finish(state.byId.get(key), m);
    }
    if (kind === "customer") {
      // Our own message echoed back: adopt the optimistic bubble instead of adding a second one.
      var pending = log.querySelector(".msg.customer.pending");
      if (pending) {
        pending.classList.remove("pending");
        return finish(pending, m);
      }
    }
    var greeting = kind === "bot" && log.querySelector(".msg.greeting");
    if (greeting && greeting.querySelector(".text").textContent === m.text) {
      // The greeting shown from the create response, now with its id from the event log.
      greeting.classList.remove("greeting");
      return finish(greeting, m);
    }
    if (kind === "bot" && state.streaming) {
      var node = state.streaming;
      state.streaming = null;
      return finish(node, m);
    }
    finish(bubble(kind, m.agent), m);
    if (panel.hidden && kind !== "customer") setUnread(state.unread + 1);
  }

  function setUnread(n) {
    state.unread = n;
    badge.textContent = String(n);
    badge.hidden = n === 0;
    var note = n === 1 ? T.unread : T.unreadMany;
    launcher.setAttribute("aria-label", n ? T.open + " (" + n + " " + note + ")" : T.open);
  }

  function setStatus(status, agent) {
    state.status = status;
    if (agent) state.agent = agent;
    var text = T[status] || status;
    if (status === "with_human") text = T.with_human.replace("{agent}", state.agent || T.anAgent);
    statusLine.textContent = text;
    root.dataset.status = status;
    humanBtn.hidden = status !== "bot";
    // Closed is not the end: a new message reopens it with the bot, or the customer starts over.
    restartBtn.hidden = status !== "closed";
  }

  // --- events (shared by the POST stream and the EventSource) ------------------------------
  function handle(type, payload, seq, fromPost) {
    if (!fromPost && state.sending && type === "message" &&
        (payload.role === "bot" || payload.role === "customer")) {
      // Our POST stream carries this turn (deltas first, then the message): taking the copy
      // from /events could finish the bubble before the POST's last deltas are read. Held
      // until the POST ends, then the ones it did not carry are shown (the rest are dupes).
      state.held.push([type, payload, seq]);
      return;
    }
    if (seq !== null && seq !== undefined && seq !== "") {
      var n = Number(seq);
      if (state.seen.has(n)) return;
      state.seen.add(n);
      if (n > state.lastSeq) { state.lastSeq = n; save(); }
    }
    type = type === "message" && payload.type ? payload.type : type;
    if (type === "delta") {
      // While our POST streams the answer, its deltas are the source; copies on /events are dropped.
      if (!fromPost && state.sending) return;
      if (!state.streaming) state.streaming = bubble("bot");
      var node = state.streaming;
      node.classList.remove("typing");
      node.classList.add("streaming");
      setText(node, (node._raw || "") + (payload.text || ""));
      scrollDown(false);
    } else if (type === "message") {
      showMessage(payload);
    } else if (type === "status") {
      setStatus(payload.status, payload.agent || payload.agent_name);
    } else if (type === "done") {
      if (state.streaming && !state.sending) {
        state.streaming.classList.remove("streaming", "typing");
        state.streaming = null;
      }
    } else if (type === "error") {
      bubble("system").querySelector(".text").textContent = payload.message || T.error;
    }
  }

  function parseBlock(block, fromPost) {
    var type = "message", seq = null, lines = [];
    block.split(/\r?\n/).forEach(function (line) {
      if (!line || line[0] === ":") return;
      var i = line.indexOf(":");
      var field = i < 0 ? line : line.slice(0, i);
      var value = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
      if (field === "event") type = value;
      else if (field === "id") seq = value;
      else if (field === "data") lines.push(value);
    });
    if (!lines.length) return;
    var payload;
    try { payload = JSON.parse(lines.join("\n")); } catch (e) { return; }
    handle(type, payload, seq, fromPost);
  }

  function listen() {
    if (state.es) state.es.close();
    clearTimeout(state.retry);
    var url = server + convPath("/events") + "?token=" + encodeURIComponent(state.token) + "&after=" + state.lastSeq;
    var es = new EventSource(url);
    state.es = es;
    ["delta", "message", "status", "done", "error"].forEach(function (type) {
      es.addEventListener(type, function (ev) {
        if (!ev.data) return; // the EventSource's own "error" events carry no data
        var payload;
        try { payload = JSON.parse(ev.data); } catch (e) { return; }
        handle(type, payload, ev.lastEventId, false);
      });
    });
    es.onopen = function () {
      state.failures = 0;
      setStatus(state.status);
    };
    es.onerror = function () {
      if (es.readyState === EventSource.CLOSED && state.es === es) {
        // The browser gave up (a 5xx from a restarting proxy): reconnect ourselves from the
        // last seq seen, backing off while it keeps failing.
        statusLine.textContent = T.reconnecting;
        state.failures += 1;
        reconnect(es, Math.min(2000 * Math.pow(2, state.failures - 1), 30000));
      }
    };
  }

  function reconnect(es, delay) {
    clearTimeout(state.retry);
    state.retry = setTimeout(function () {
      if (state.es !== es) return; // a newer stream (or a reset) took over
      resume(true).catch(function () { reconnect(es, Math.min(delay * 2, 30000)); });
    }, delay);
  }

  // --- conversation lifecycle -------------------------------------------------------------
  function reset() {
    if (state.es) state.es.close();
    state.es = null;
    state.id = state.token = null;
    state.lastSeq = 0;
    state.seen = new Set();
    state.byId = new Map();
    state.streaming = null;
    state.ready = null;
    state.held = [];
    state.photos = [];
    showTray();
    log.textContent = "";
    try { localStorage.removeItem(STORE); } catch (e) { /* ignore */ }
    setStatus("bot");
  }

  function create() {
    return fetch(server + "/v1/support/conversations", {
      method: "POST", headers: { "Content-Type": "application/json" }, credentials: "omit",
      body: JSON.stringify({ channel: "web", locale: locale }),
    }).then(function (r) {
      if (!r.ok) throw new Error("create conversation: HTTP " + r.status);
      return r.json();
    }).then(function (body) {
      state.id = body.conversation_id;
      state.token = body.customer_token;
      save();
      setStatus(body.status || "bot");
      if (body.greeting) {
        var hello = bubble("bot");
        hello.classList.add("greeting");
        // A question typed before the conversation existed is already on screen: greet above it.
        log.insertBefore(hello, log.firstChild);
        finish(hello, { role: "bot", text: body.greeting, source: "system" });
      }
      listen();
      return true;
    });
  }

  // Resolves true once the stored session is on screen again, false when it is gone.
  function resume(quiet) {
    return api(convPath("")).then(function (r) {
      if (r.status === 401 || r.status === 403 || r.status === 404) return null;
      if (!r.ok) throw new Error("transcript: HTTP " + r.status);
      return r.json();
    }).then(function (body) {
      if (!body) { reset(); return false; }
      if (typeof body.last_seq === "number" && body.last_seq > state.lastSeq) state.lastSeq = body.last_seq;
      var unread = state.unread;
      (body.messages || []).forEach(function (m) {
        if (!state.byId.has(String(m.id))) showMessage(m);
      });
      // What was on screen before a reload is not news; what came during an outage is.
      setUnread(quiet ? state.unread : unread);
      setStatus(body.status || "bot", body.agent || body.agent_name);
      listen();
      return true;
    });
  }

  function ensure() {
    if (!state.ready) {
      state.ready = (state.id ? resume(false) : Promise.resolve(false))
        .then(function (ok) { return ok || create(); })
        .catch(function (e) {
          state.ready = null;
          throw e;
        });
    }
    return state.ready;
  }

  function readStream(response) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done) {
          if (buffer.trim()) parseBlock(buffer, true);
          return;
        }
        buffer += decoder.decode(chunk.value, { stream: true });
        var parts = buffer.split(/\r?\n\r?\n/);
        buffer = parts.pop();
        parts.forEach(function (block) { parseBlock(block, true); });
        return pump();
      });
    }
    return pump();
  }

  function send(text) {
    text = text.trim();
    var photos = state.photos;
    if ((!text && !photos.length) || state.sending) return Promise.resolve();
    state.photos = [];
    showTray();
    state.sending = true;
    sendBtn.disabled = true;
    log.querySelectorAll(".quick").forEach(function (q) { q.remove(); });
    log.setAttribute("aria-busy", "true");
    var mine = bubble("customer");
    mine.classList.add("pending");
    setText(mine, text);
    photos.forEach(function (url) { addPhoto(mine, url); });
    scrollDown(true);
    return ensure().then(function () {
      if (state.status === "bot") {
        state.streaming = bubble("bot");
        state.streaming.classList.add("typing");
      }
      return api(convPath("/messages"), { method: "POST", body: { text: text, images: photos } });
    }).then(function (r) {
      if (r.status === 401 || r.status === 404) { reset(); throw new Error("session expired"); }
      if (!r.ok || !r.body) throw new Error("send: HTTP " + r.status);
      return readStream(r);
    }).catch(function () {
      if (state.streaming) { state.streaming.remove(); state.streaming = null; }
      bubble("system").querySelector(".text").textContent = T.error;
    }).then(function () {
      if (state.streaming) {
        // Deltas without a closing message: keep the text, drop the cursor.
        state.streaming.classList.remove("streaming", "typing");
        if (!state.streaming.querySelector(".text").textContent) state.streaming.remove();
        state.streaming = null;
      }
      mine.classList.remove("pending");
      state.sending = false;
      var held = state.held;
      state.held = [];
      held.forEach(function (h) { handle(h[0], h[1], h[2], false); });
      sendBtn.disabled = false;
      log.removeAttribute("aria-busy");
    });
  }

  // --- interaction ------------------------------------------------------------------------
  function open() {
    panel.hidden = false;
    panel.setAttribute("aria-modal", String(phone.matches));
    root.classList.add("open");
    // The toggle keeps its name; aria-expanded tells its state (the disclosure pattern).
    launcher.setAttribute("aria-expanded", "true");
    setUnread(0);
    input.focus();
    scrollDown(true);
    ensure().catch(function () {
      bubble("system").querySelector(".text").textContent = T.error;
    });
  }
  function close() {
    panel.hidden = true;
    root.classList.remove("open");
    launcher.setAttribute("aria-expanded", "false");
    launcher.focus();
  }

  launcher.addEventListener("click", function () { if (panel.hidden) open(); else close(); });
  closeBtn.addEventListener("click", close);
  var phone = window.matchMedia("(max-width: 480px)");
  panel.addEventListener("keydown", function (e) {
    if (e.key === "Escape") {
      close();
    } else if (e.key === "Tab" && phone.matches) {
      // Full screen on a phone the page behind is covered: keep focus cycling in the panel.
      var items = Array.prototype.filter.call(
        panel.querySelectorAll("button, textarea, a[href], [tabindex='0']"),
        function (n) { return !n.disabled && n.getClientRects().length > 0; }
      );
      var first = items[0], last = items[items.length - 1];
      if (e.shiftKey && shadow.activeElement === first) { e.preventDefault(); last.focus(); }
      else if (!e.shiftKey && shadow.activeElement === last) { e.preventDefault(); first.focus(); }
    }
  });
  attachBtn.addEventListener("click", function () { picker.click(); });
  picker.addEventListener("change", function () {
    var files = Array.prototype.slice.call(picker.files || []);
    picker.value = "";
    var room = PHOTOS.max_per_message - state.photos.length;
    if (files.length > room) {
      notice(T.tooMany.replace("{n}", String(PHOTOS.max_per_message)));
      files = files.slice(0, Math.max(0, room));
    }
    files.reduce(function (done, file) {
      return done.then(function () {
        return preparePhoto(file).then(function (url) {
          state.photos.push(url);
          showTray();
        }).catch(function (err) { notice(err.message || T.unreadable); });
      });
    }, Promise.resolve()).then(function () { input.focus(); });
  });
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = input.value;
    if ((!text.trim() && !state.photos.length) || state.sending) return;
    input.value = "";
    send(text);
    input.focus();
  });
  input.addEventListener("keydown", function (e) {
    // Enter sends, Shift+Enter is a new line; never while an IME is composing (Chinese input).
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit", { cancelable: true }));
    }
  });
  humanBtn.addEventListener("click", function () {
    humanBtn.disabled = true;
    ensure().then(function () {
      return api(convPath("/handoff"), { method: "POST", body: { reason: null } });
    }).then(function (r) {
      if (!r.ok) throw new Error("handoff: HTTP " + r.status);
      return r.json().catch(function () { return {}; });
    }).then(function (body) {
      if (state.status === "bot") setStatus(body.status || "waiting_human", body.agent);
    }).catch(function () {
      bubble("system").querySelector(".text").textContent = T.error;
    }).then(function () { humanBtn.disabled = false; input.focus(); });
  });
  restartBtn.addEventListener("click", function () {
    reset();
    ensure().then(function () { input.focus(); });
  });

  function mount() {
    document.body.appendChild(host);
    var stored = load();
    if (stored && stored.id && stored.token) {
      state.id = stored.id;
      state.token = stored.token;
      state.lastSeq = Number(stored.seq) || 0; // /events resumes after the last event seen
      // Resume right away so human replies arrive (and badge the launcher) before it is opened.
      ensure().catch(function () { /* shown when the panel opens */ });
    }
  }
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);

  window.glmSupport = {
    open: open, close: close, reset: reset,
    send: function (text) { return send(String(text)); },
    get conversationId() { return state.id; },
  };
})();
