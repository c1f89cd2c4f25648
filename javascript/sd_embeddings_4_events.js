// Textual Inversion tab, part 4 of 4: events, attaching to panes (again whenever gradio re-renders or replaces one),
// polling for changes, and init. Loaded last (alphabetical order), so the other parts' functions exist when it runs.
// The server sends only the shell (sd_embeddings/tab/shell.py): controls with the WebUI's ids, empty containers and
// the first cards document inline in <script type="application/json" class="sdemb-doc">.
(function () {
  "use strict";
  const NS = (window.sdEmbeddings = window.sdEmbeddings || {});
  if (NS.ready) return; // loaded twice: the first copy is running
  const lib = (NS.lib = NS.lib || {});
  const states = NS.states;

  // ---- wiring ------------------------------------------------------------------------------------------
  // Events are delegated from the document, so a pane whose children gradio replaced needs no re-wiring.
  function activate(state, el, other) {
    const card = state.byId && state.byId.get(el.dataset.id);
    if (card) NS.toggle(state.tab, card, other);
  }
  function target(ev) {
    return ev.composedPath ? ev.composedPath()[0] : ev.target;
  }
  // The state of the pane an element belongs to (controls the WebUI moved out included). A pane gradio replaced
  // gets its state at the next frame; a click before that attaches it here, so the click is not lost.
  function stateOf(el) {
    let pane = el && el.closest ? el.closest(".sdemb-pane") : null;
    const controls = !pane && el && el.closest ? el.closest(".sdemb-controls") : null;
    if (controls && controls.id) pane = lib.byId(controls.id.replace(/_controls$/, "_pane"));
    if (pane && !states.has(pane)) attach(pane);
    const state = pane && states.get(pane);
    return state && state.doc ? state : null;
  }
  lib.stateOf = stateOf;
  function onControl(ev) {
    const el = target(ev), state = stateOf(el);
    if (!state || !el.classList) return;
    if (el.classList.contains("sdemb-search")) state.query = el.value;
    else if (el.classList.contains("sdemb-sort")) state.sort = el.value;
    else if (el.classList.contains("sdemb-family")) state.family = el.value;
    else return;
    lib.render(state, false);
  }
  function flipDir(state, button) {
    state.dir = state.dir === "asc" ? "desc" : "asc";
    showDir(state, button);
    lib.render(state, false);
  }
  function showDir(state, button) {
    button.dataset.dir = state.dir;
    button.dataset.sortdir = state.dir === "asc" ? "Ascending" : "Descending";
    button.innerHTML = state.dir === "asc" ? "&#8593;" : "&#8595;";
  }
  function onTree(state, el) {
    const fold = el.closest(".sdemb-chevron");
    if (fold) {
      const f = fold.dataset.toggle;
      if (!state.collapsed.delete(f)) state.collapsed.add(f);
      lib.renderTree(state);
      const again = Array.from(state.tree.querySelectorAll(".sdemb-chevron")).find((b) => b.dataset.toggle === f);
      if (again) again.focus();
      return;
    }
    const b = el.closest(".sdemb-folder-btn");
    if (!b) return;
    state.folder = b.dataset.folder || null;
    lib.renderSide(state);
    lib.render(state, false);
  }
  function onClick(ev) {
    const el = target(ev), state = stateOf(el);
    if (!state || !el.closest) return;
    const button = el.closest("button");
    if (button && button.classList.contains("sdemb-sort-dir")) return flipDir(state, button);
    if (button && button.classList.contains("sdemb-tree-toggle")) {
      state.treeForced = !state.pane.classList.toggle("sdemb-no-tree");
      return;
    }
    if (button && button.classList.contains("sdemb-refresh")) {
      button.disabled = true;
      lib.load(state, "refresh").catch((e) => console.error("sd-embeddings:", e)).finally(() => (button.disabled = false));
      return;
    }
    if (el.closest(".sdemb-tree")) return onTree(state, el);
    const card = el.closest(".sdemb-card");
    if (!card) return;
    if (el.closest(".sdemb-edit")) return NS.editMetadata(state, card.dataset.id);
    activate(state, card, ev.shiftKey || ev.altKey);
  }
  function onKey(ev) {
    const el = target(ev), state = stateOf(el);
    if (!state || !el.classList || !el.classList.contains("sdemb-card")) return;
    if (ev.key !== "Enter" && ev.key !== " ") return;
    ev.preventDefault();
    activate(state, el, ev.shiftKey || ev.altKey);
  }
  document.addEventListener("input", onControl);
  document.addEventListener("change", onControl);
  document.addEventListener("click", onClick);
  document.addEventListener("keydown", onKey);

  async function poll(state) {
    if (!state.pane.isConnected) return clearInterval(state.timer);
    try {
      const res = await fetch(state.api + "/version");
      // not while a load is fetching pages: it would start again before it could finish (the next tick reloads)
      if (res.ok && (await res.json()).version !== state.version && !state.busy) await lib.load(state, "reload");
    } catch (e) { /* host restarting: try again next tick */ }
  }
  function inlineDoc(pane) {
    const el = pane.querySelector("script.sdemb-doc");
    if (!el) return null;
    try {
      return JSON.parse(el.textContent);
    } catch (e) {
      console.error("sd-embeddings: unreadable inline cards document", e);
      return null;
    }
  }
  function create(pane) {
    const live = controlsOf({ pane, t: pane.dataset.t }).live || pane, part = (cls) => live.querySelector(cls);
    const sortBox = part(".sdemb-sort"), dirButton = part(".sdemb-sort-dir"), search = part(".sdemb-search");
    const familyBox = part(".sdemb-family");
    const sentinel = document.createElement("div");
    sentinel.className = "sdemb-sentinel";
    const state = { pane, t: pane.dataset.t, tab: pane.dataset.tab, api: pane.dataset.api, sentinel, all: [], view: [],
      rendered: 0, query: search ? search.value : "", sort: sortBox ? sortBox.value : "name",
      dir: dirButton && dirButton.dataset.dir === "desc" ? "desc" : "asc", family: familyBox ? familyBox.value : "",
      folder: null,
      hiddenMode: pane.dataset.hiddenModels || "When searched", collapsed: new Set(), seenFolders: new Set() };
    new IntersectionObserver((seen) => {
      if (seen.some((s) => s.isIntersecting) && state.rendered < state.view.length) lib.renderMore(state);
    }, { rootMargin: "600px" }).observe(sentinel);
    const every = parseInt(pane.dataset.watch || "0", 10);
    if (every > 0) {
      state.timer = setInterval(() => poll(state), every);
      // The inline document can be older than the page: gradio keeps the pane as it was built at the server's
      // start until its load event lands. One check at once, not a tick later (attach shows the document first).
      setTimeout(() => poll(state), 0);
    }
    states.set(pane, state);
    return state;
  }
  // The WebUI (1.8+) moves the first "{t}_controls" it finds into its tab bar; a later re-render brings a second
  // copy inside the pane. The moved one is what the user sees, so it stays the live one and the copy goes.
  function controlsOf(state) {
    const inside = state.pane.querySelector(".sdemb-controls");
    const moved = Array.from(lib.app().querySelectorAll("#" + CSS.escape(state.t + "_controls")))
      .find((c) => !state.pane.contains(c));
    return { inside, moved, live: moved || inside };
  }
  // The pane's parts as they are now (gradio may have put new ones in), showing the state's choices.
  function bind(state) {
    const pane = state.pane, found = controlsOf(state);
    if (found.moved && found.inside) found.inside.remove();
    const controls = found.live || pane, part = (cls) => controls.querySelector(cls);
    Object.assign(state, { controls: found.live, cards: pane.querySelector(".sdemb-cards"),
      tree: pane.querySelector(".sdemb-tree"), count: part(".sdemb-count") });
    const search = part(".sdemb-search"), sort = part(".sdemb-sort"), family = part(".sdemb-family");
    if (search) search.value = state.query;
    if (sort) sort.value = state.sort;
    if (family) family.value = state.family;
    const dir = part(".sdemb-sort-dir");
    if (dir) showDir(state, dir);
  }
  function intact(state) {
    const pane = state.pane, found = controlsOf(state);
    return pane.dataset.sdembInit === "1" && state.cards === pane.querySelector(".sdemb-cards") &&
      state.sentinel.parentNode === state.cards && state.tree === pane.querySelector(".sdemb-tree") &&
      !!state.tree.firstElementChild && !(found.moved && found.inside) && state.controls === found.live &&
      (!state.count || (state.count.isConnected && !!state.count.textContent));
  }
  // Idempotent: a new pane gets a state drawn from its inline document; a pane whose children or marker a gradio
  // re-render wiped is drawn again from its state (or from a newer inline document), keeping search, sort, folder.
  function attach(pane) {
    if (!pane.querySelector(".sdemb-cards") || !pane.querySelector(".sdemb-tree")) return;
    const state = states.get(pane) || create(pane);
    if (state.doc && intact(state)) return;
    bind(state);
    pane.dataset.sdembInit = "1";
    const doc = inlineDoc(pane);
    if (doc && (!state.doc || doc.version > state.version)) lib.show(state, doc, !!state.doc);
    else if (state.doc) lib.show(state, state.doc, true);
    if ((!state.doc || state.partial) && !state.busy) lib.load(state, "reload").catch((e) => console.error("sd-embeddings:", e));
  }
  NS.init = () => lib.app().querySelectorAll(".sdemb-pane").forEach(attach);
  let queued = false;
  const observer = new MutationObserver(() => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => { queued = false; NS.init(); });
  });
  observer.observe(document.documentElement, { childList: true, subtree: true, attributes: true,
    attributeFilter: ["data-sdemb-init"] });
  NS.ready = true;
  if (document.readyState !== "loading") NS.init();
  else document.addEventListener("DOMContentLoaded", NS.init);
})();
