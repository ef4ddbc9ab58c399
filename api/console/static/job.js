// ghost-engine console: a job's page. Polls GET /status while the job is queued or running and
// re-renders the page's live parts from the server's own (escaped) HTML; the operator's retry and
// cancel; the minimap's zoom and pan; the level explorer. Job values reach the DOM as text only.
"use strict";

(function () {
  const root = document.getElementById("job");
  if (!root) return;
  const TERMINAL = new Set(["done", "failed", "cancelled"]);
  const POLL_MS = 1500;
  const TOKEN_KEY = "ghost-engine.operatorToken";
  const announcer = document.getElementById("announce");
  let state = root.dataset.state;
  let fingerprint = root.dataset.fingerprint;
  let timer = null;

  // --- live updates -------------------------------------------------------------------------

  function schedule() {
    clearTimeout(timer);
    timer = null;
    if (!TERMINAL.has(state) && !document.hidden) timer = setTimeout(poll, POLL_MS);
  }

  async function poll() {
    timer = null;
    try {
      const response = await fetch(root.dataset.statusUrl, { headers: { Accept: "application/json" }, cache: "no-store" });
      if (response.ok) await apply(await response.json());
    } catch (err) {
      // A missed poll is retried at the next tick; the page keeps what it shows.
    }
    schedule();
  }

  async function apply(status) {
    const seen = [status.state, status.attempt, status.steps.length, status.updatedAt].join("|");
    if (seen === fingerprint) return;
    fingerprint = seen;
    await refresh();
    if (status.state !== state) {
      state = status.state;
      root.dataset.state = state;
      announcer.textContent = "The job is now " + state + ".";
      document.title = document.title.replace(/\((queued|running|done|failed|cancelled)\)/, "(" + state + ")");
      updateOperator();
    }
  }

  async function refresh() {
    // The server renders (and escapes) the page; swap in its live parts, keeping focus where it was.
    const response = await fetch(window.location.pathname, { headers: { Accept: "text/html" }, cache: "no-store" });
    if (!response.ok) return;
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    const focusedId = document.activeElement && document.activeElement.id;
    for (const part of document.querySelectorAll(".live-part")) {
      const replacement = fresh.getElementById(part.id);
      if (replacement) part.replaceWith(document.adoptNode(replacement));
    }
    if (focusedId && !document.getElementById(focusedId)?.contains(document.activeElement)) {
      document.getElementById(focusedId)?.focus();
    }
    initLevel();
  }

  document.addEventListener("visibilitychange", () => {
    if (document.hidden) {
      clearTimeout(timer);
      timer = null;
    } else if (!TERMINAL.has(state) && timer === null) {
      poll();
    }
  });

  // --- operator: retry and cancel -----------------------------------------------------------

  const tokenForm = document.getElementById("token-form");
  const tokenInput = document.getElementById("token");
  const tokenSet = document.getElementById("token-set");
  const reasonInput = document.getElementById("reason");
  const result = document.getElementById("operator-result");
  const actions = {
    retry: { button: document.getElementById("retry-button"), why: document.getElementById("retry-why"),
             url: root.dataset.retryUrl, allowed: ["failed"],
             ok: "Runs the job again from its first unfinished step, as a new attempt.",
             refused: "Only a failed job can be retried." },
    cancel: { button: document.getElementById("cancel-button"), why: document.getElementById("cancel-why"),
              url: root.dataset.cancelUrl, allowed: ["queued", "running"],
              ok: "Steps not started yet will not run.",
              refused: "Only a queued or running job can be cancelled." },
  };

  function token() {
    try { return sessionStorage.getItem(TOKEN_KEY) || ""; } catch (err) { return ""; }
  }

  function updateOperator() {
    const has = token() !== "";
    tokenForm.hidden = has;
    tokenSet.hidden = !has;
    for (const action of Object.values(actions)) {
      const allowed = action.allowed.includes(state);
      action.button.disabled = !(has && allowed);
      action.why.textContent = !has
        ? "Needs the operator token: enter it above."
        : allowed ? action.ok : action.refused + " This one is " + state + ".";
    }
  }

  function say(text, good) {
    result.textContent = text;
    result.className = good ? "good" : "bad";
    result.hidden = false;
    result.focus();
  }

  tokenForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = tokenInput.value.trim();
    if (!value) { tokenInput.focus(); return; }
    try { sessionStorage.setItem(TOKEN_KEY, value); } catch (err) { /* storage off: nothing kept */ }
    tokenInput.value = "";
    updateOperator();
    document.getElementById("forget-token").focus();
  });

  document.getElementById("forget-token").addEventListener("click", () => {
    try { sessionStorage.removeItem(TOKEN_KEY); } catch (err) { /* nothing kept */ }
    updateOperator();
    tokenInput.focus();
  });

  async function act(name) {
    const action = actions[name];
    const reason = reasonInput.value.trim();
    // In the body, not the action's header: a browser sends no header beyond latin-1.
    const headers = { "X-INTERNAL-TOKEN": token(), Accept: "application/json" };
    const request = { method: "POST", headers };
    if (reason) {
      headers["Content-Type"] = "application/json";
      request.body = JSON.stringify({ reason });
    }
    action.button.disabled = true;
    try {
      const response = await fetch(action.url, request);
      const body = await response.json().catch(() => ({}));
      if (response.ok) {
        reasonInput.value = "";
        say(name === "retry" ? "Retried: attempt " + body.attempt + " is " + body.state + "." : "The job is " + body.state + ".", true);
        await apply(body);
        schedule();
      } else {
        const error = body.error || { code: "HTTP_" + response.status, message: "the API answered " + response.status };
        let text = response.status + " " + error.code + ": " + error.message;
        if (response.status === 409) poll();  // the page was out of date: show the job as it is now
        if (response.status === 401) {
          try { sessionStorage.removeItem(TOKEN_KEY); } catch (err) { /* nothing kept */ }
          text += " The token was forgotten; enter it again.";
        }
        say(text, false);
      }
    } catch (err) {
      say("Could not reach the API: " + err.message, false);
    } finally {
      updateOperator();
    }
  }

  actions.retry.button.addEventListener("click", () => act("retry"));
  actions.cancel.button.addEventListener("click", () => act("cancel"));

  // --- the level: minimap zoom and pan, the explorer -----------------------------------------

  function initMinimap() {
    const viewport = document.getElementById("minimap-viewport");
    const img = document.getElementById("minimap");
    if (!viewport || !img || viewport.dataset.ready) return;
    viewport.dataset.ready = "1";
    const label = document.getElementById("zoom-level");
    let fit = 1, scale = 1, x = 0, y = 0, drag = null;

    function draw() {
      img.style.transform = "translate(" + x + "px, " + y + "px) scale(" + scale + ")";
      label.textContent = Math.round((scale / fit) * 100) + "%";
    }
    function reset() {
      if (!img.naturalWidth) return;
      fit = Math.min(viewport.clientWidth / img.naturalWidth, viewport.clientHeight / img.naturalHeight);
      scale = fit;
      x = (viewport.clientWidth - img.naturalWidth * scale) / 2;
      y = (viewport.clientHeight - img.naturalHeight * scale) / 2;
      draw();
    }
    function zoom(factor, cx, cy) {
      if (cx === undefined) { cx = viewport.clientWidth / 2; cy = viewport.clientHeight / 2; }
      const next = Math.min(Math.max(scale * factor, fit * 0.5), fit * 40);
      x = cx - ((cx - x) * next) / scale;
      y = cy - ((cy - y) * next) / scale;
      scale = next;
      draw();
    }
    if (img.complete) reset(); else img.addEventListener("load", reset);
    window.addEventListener("resize", reset);
    for (const button of document.querySelectorAll("[data-zoom]")) {
      button.addEventListener("click", () => {
        const kind = button.dataset.zoom;
        if (kind === "reset") reset(); else zoom(kind === "in" ? 1.5 : 1 / 1.5);
      });
    }
    viewport.addEventListener("wheel", (event) => {
      event.preventDefault();
      const box = viewport.getBoundingClientRect();
      zoom(event.deltaY < 0 ? 1.25 : 0.8, event.clientX - box.left, event.clientY - box.top);
    }, { passive: false });
    viewport.addEventListener("pointerdown", (event) => {
      drag = { id: event.pointerId, x: event.clientX, y: event.clientY };
      viewport.setPointerCapture(event.pointerId);
      viewport.classList.add("dragging");
    });
    viewport.addEventListener("pointermove", (event) => {
      if (!drag || drag.id !== event.pointerId) return;
      x += event.clientX - drag.x;
      y += event.clientY - drag.y;
      drag.x = event.clientX;
      drag.y = event.clientY;
      draw();
    });
    const stop = () => { drag = null; viewport.classList.remove("dragging"); };
    viewport.addEventListener("pointerup", stop);
    viewport.addEventListener("pointercancel", stop);
    viewport.addEventListener("keydown", (event) => {
      const step = 40;
      const moves = { ArrowLeft: [step, 0], ArrowRight: [-step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] };
      if (moves[event.key]) { x += moves[event.key][0]; y += moves[event.key][1]; draw(); }
      else if (event.key === "+" || event.key === "=") zoom(1.5);
      else if (event.key === "-") zoom(1 / 1.5);
      else if (event.key === "0") reset();
      else return;
      event.preventDefault();
    });
  }

  function initExplorer() {
    const svg = document.getElementById("level-svg");
    if (!svg || svg.dataset.ready) return;
    svg.dataset.ready = "1";
    const rooms = Array.from(svg.querySelectorAll(".room"));
    const info = document.getElementById("room-info-text");
    const centres = new Map(rooms.map((room) => {
      const box = room.querySelector(".floor").getBBox();
      return [room, { x: box.x + box.width / 2, y: box.y + box.height / 2 }];
    }));

    function line(term, value) {
      const div = document.createElement("div");
      const dt = document.createElement("dt");
      const dd = document.createElement("dd");
      dt.textContent = term;
      dd.textContent = value;
      div.append(dt, dd);
      return div;
    }
    function show(room) {
      const list = document.createElement("dl");
      list.className = "facts room-facts";
      list.id = "room-info-text";
      list.append(
        line("Room", room.dataset.room), line("Kind", room.dataset.kind), line("Depth", room.dataset.depth),
        line("Zone", room.dataset.zone), line("Light", room.dataset.light), line("Stands here", room.dataset.contents),
      );
      document.getElementById("room-info-text").replaceWith(list);
      for (const other of rooms) other.classList.toggle("active", other === room);
    }
    function moveTo(room) {
      for (const other of rooms) other.setAttribute("tabindex", other === room ? "0" : "-1");
      room.focus();
    }
    function nearest(from, dx, dy) {
      // The closest room whose centre lies in the arrow's direction, straight ahead preferred.
      const a = centres.get(from);
      let best = null, bestCost = Infinity;
      for (const room of rooms) {
        if (room === from) continue;
        const b = centres.get(room);
        const along = (b.x - a.x) * dx + (b.y - a.y) * dy;
        if (along <= 0) continue;
        const across = Math.abs((b.x - a.x) * dy - (b.y - a.y) * dx);
        const cost = along + 2 * across;
        if (cost < bestCost) { bestCost = cost; best = room; }
      }
      return best;
    }
    for (const room of rooms) {
      room.addEventListener("mouseenter", () => show(room));
      room.addEventListener("focus", () => show(room));
      room.addEventListener("click", () => moveTo(room));
    }
    svg.addEventListener("keydown", (event) => {
      const room = event.target.closest && event.target.closest(".room");
      if (!room) return;
      const directions = { ArrowRight: [1, 0], ArrowLeft: [-1, 0], ArrowDown: [0, 1], ArrowUp: [0, -1] };
      let next = null;
      if (directions[event.key]) next = nearest(room, ...directions[event.key]);
      else if (event.key === "Home") next = rooms[0];
      else if (event.key === "End") next = rooms[rooms.length - 1];
      else return;
      event.preventDefault();
      if (next) moveTo(next);
    });
    const toggle = document.getElementById("path-toggle");
    const steps = document.getElementById("path-steps");
    toggle.addEventListener("change", () => {
      svg.classList.toggle("show-path", toggle.checked);
      steps.hidden = !toggle.checked;
    });
  }

  function initLevel() {
    initMinimap();
    initExplorer();
  }

  updateOperator();
  initLevel();
  schedule();
})();
