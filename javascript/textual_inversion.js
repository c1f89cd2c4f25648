// Textual Inversion tab: cards, search/sort/filter, click-to-insert, metadata dialog.
// One classic script, one namespace (window.sdEmbeddings), safe to load twice. Works in AUTOMATIC1111's WebUI
// (gradio 3.41) and in the standalone gradio page (gradio 6). The server sends only the shell
// (sd_embeddings/tab/shell.py): controls with the WebUI's ids, empty containers and the first cards document inline
// in <script type="application/json" class="sdemb-doc">. This script is the only renderer of cards, tree, count,
// empty state and problems, and re-attaches whenever gradio re-renders or replaces the pane.
(function () {
  "use strict";
  if (window.sdEmbeddings && window.sdEmbeddings.ready) return;
  const NS = (window.sdEmbeddings = window.sdEmbeddings || {});
  const CHUNK = 60;
  const TREE_MANY = 40; // with more folders than this, folders below the first level start folded
  const HIDDEN_MIN_SEARCH = 4;
  const states = new WeakMap();
  const lastBox = {}; // tab -> "positive" | "negative"
  const touched = new WeakSet(); // textareas the user has put a caret in

  function app() {
    return typeof window.gradioApp === "function" ? window.gradioApp() : document;
  }
  function byId(id) {
    return app().querySelector("#" + CSS.escape(id)) || document.getElementById(id);
  }
  function esc(text) {
    return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  }
  // Writes carry the page token the host put in <meta name="sd-embeddings-token"> (refused without it); a refused
  // request's answer is JSON whose "detail" is a one-line reason.
  function writeHeaders(type) {
    const meta = app().querySelector('meta[name="sd-embeddings-token"]') || document.querySelector('meta[name="sd-embeddings-token"]');
    return { "Content-Type": type, "X-SD-Embeddings-Token": meta ? meta.content : "" };
  }
  async function reason(res) {
    const text = await res.text().catch(() => "");
    try { return "HTTP " + res.status + ": " + JSON.parse(text).detail; } catch (e) { return "HTTP " + res.status + " " + text.slice(0, 200); }
  }
  function reEscape(text) {
    return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  }

  // ---- prompt boxes ------------------------------------------------------------------------------------
  function promptBox(tab, negative) {
    const holder = byId(tab + (negative ? "_neg_prompt" : "_prompt"));
    return holder ? holder.querySelector("textarea") : null;
  }
  function boxOf(textarea) {
    for (let el = textarea.parentElement; el; el = el.parentElement) {
      const m = el.id && /^(\w+?)_(neg_)?prompt$/.exec(el.id);
      if (m) return { tab: m[1], negative: !!m[2] };
    }
    return null;
  }
  document.addEventListener("focusin", (ev) => {
    if (!ev.target || ev.target.tagName !== "TEXTAREA") return;
    const where = boxOf(ev.target);
    if (!where) return;
    lastBox[where.tab] = where.negative ? "negative" : "positive";
    touched.add(ev.target);
  }, true);
  function separator() {
    const o = window.opts;
    return o && typeof o.extra_networks_add_text_separator === "string" ? o.extra_networks_add_text_separator : " ";
  }
  NS.escapePrompt = (name) => name.replace(/[\\()[\]]/g, "\\$&");
  NS.promptText = (keyword, weight) => {
    const name = NS.escapePrompt(keyword);
    return weight !== null && weight !== undefined && weight !== 1 ? "(" + name + ":" + weight + ")" : name;
  };
  // A whole keyword: a letter, digit, '-' or '_' next to it makes it part of a longer word (sample-image-v2,
  // mysample-image, sample-images); start/end, spaces, commas, brackets and the ":weight" form delimit it.
  const WORD = "\\p{L}\\p{N}_\\-";
  function pattern(keyword) {
    const n = reEscape(NS.escapePrompt(keyword));
    const num = "[+-]?(?:\\d+\\.?\\d*|\\.\\d+)";
    return new RegExp("\\(\\s*" + n + "\\s*(?::\\s*" + num + "\\s*)?\\)|(?<![" + WORD + "\\\\])" + n +
      "(?![" + WORD + "])", "giu");
  }
  // Removes every occurrence (plain, emphasised or weighted) with its separator; null when there was none.
  NS.removeFromPrompt = (value, keyword, sep) => {
    const parts = value.split(pattern(keyword));
    if (parts.length === 1) return null;
    const mark = sep.trim(), any = "(?:," + (mark && mark !== "," ? "|" + reEscape(mark) : "") + ")?";
    const trailing = new RegExp("\\s*" + any + "\\s*$");
    const leading = new RegExp("^\\s*" + any + "\\s*");
    let out = parts[0];
    for (const right of parts.slice(1)) {
      const left = out.replace(trailing, "");
      if (!left.trim()) out = right.replace(leading, "");
      else if (!right.trim()) out = left;
      else if (/^[\s,:)\]]/.test(right) || /[([]$/.test(left) || (mark && right.startsWith(mark))) out = left + right;
      else out = left + sep + right;
    }
    return out;
  };
  NS.insertIntoPrompt = (value, text, pos, sep) => {
    const before = value.slice(0, pos), after = value.slice(pos), mark = sep.trim();
    let lead = "", trail = "";
    if (before.trim() && !/[([]$/.test(before)) {
      if (mark && before.trimEnd().endsWith(mark)) lead = /\s$/.test(before) ? "" : " ";
      else if (!(/\s$/.test(before) && !mark)) lead = sep;
    }
    if (after.trim()) {
      // "a cat|, in a garden" -> "a cat emb, in a garden": no space before a comma, ")" or "]"
      if ((mark && after.trimStart().startsWith(mark)) || /^[,;)\]]/.test(after)) trail = "";
      else if (/^\s/.test(after)) trail = mark;
      else trail = sep;
    }
    const head = before + lead + text;
    return { value: head + trail + after, caret: head.length };
  };
  function fireInput(textarea) {
    if (typeof window.updateInput === "function") return window.updateInput(textarea);
    textarea.dispatchEvent(new Event("input", { bubbles: true }));
  }
  // Toggle a card's keyword in the right box. other=true (Shift/Alt-click) sends it to the other box.
  NS.toggle = (tab, card, other) => {
    let negative = card.target === "negative" || (card.target === "focused" && lastBox[tab] === "negative");
    if (other) negative = !negative;
    const box = promptBox(tab, negative);
    if (!box) return null;
    const sep = separator();
    const removed = NS.removeFromPrompt(box.value, card.keyword, sep);
    if (removed !== null) {
      box.value = removed;
    } else {
      const pos = touched.has(box) && box.selectionEnd !== null ? box.selectionEnd : box.value.length;
      const done = NS.insertIntoPrompt(box.value, NS.promptText(card.keyword, card.weight), pos, sep);
      box.value = done.value;
      if (touched.has(box)) box.setSelectionRange(done.caret, done.caret);
      if (card.status !== "loaded") NS.toast(box, card.keyword + " stays plain text: " + (card.reason || card.status));
    }
    fireInput(box);
    return negative ? "negative" : "positive";
  };
  // A short note under a prompt box (fixed position, so the WebUI's layout does not move), gone after a while.
  NS.toast = (box, text) => {
    const holder = box.closest("[id$='prompt']") || box, where = holder.getBoundingClientRect();
    const note = holder.__sdembToast || document.createElement("div");
    holder.__sdembToast = note;
    note.className = "sdemb-toast";
    note.setAttribute("role", "status");
    note.textContent = text;
    note.style.left = Math.max(4, where.left) + "px";
    note.style.top = where.bottom + 4 + "px";
    note.style.maxWidth = Math.max(200, where.width) + "px";
    document.body.appendChild(note);
    clearTimeout(note.__timer);
    note.__timer = setTimeout(() => note.remove(), 5000);
    return note;
  };

  // ---- data, filtering, rendering ----------------------------------------------------------------------
  function decode(state, doc) {
    const f = doc.fields;
    state.doc = doc;
    state.all = doc.cards.map((row, idx) => {
      const card = { idx };
      f.forEach((k, i) => (card[k] = row[i]));
      card.search = (card.keyword + " " + card.relpath + " " + card.description).toLowerCase();
      card.pathKey = card.relpath.toLowerCase();
      return card;
    });
    state.byId = new Map(state.all.map((c) => [c.card_id, c]));
    // a first page (big libraries): rows already in the order the user sees, counts from the server
    state.partial = doc.complete === false;
  }
  // Hidden cards (a "." file or folder): the WebUI's extra_networks_hidden_models decides.
  function hiddenShown(state) {
    const mode = state.hiddenMode;
    return mode === "Always" || (mode !== "Never" && state.query.trim().length >= HIDDEN_MIN_SEARCH);
  }
  function hiddenFolder(folder) {
    return folder.split("/").some((part) => part.startsWith("."));
  }
  function matches(state, card, terms) {
    if (card.hidden && !hiddenShown(state)) return false;
    const fam = state.family;
    if (fam === "usable" ? card.status !== "loaded" : fam && card.family !== fam) return false;
    if (state.folder && card.folder !== state.folder && !card.folder.startsWith(state.folder + "/")) return false;
    return terms.every((t) => card.search.includes(t));
  }
  function compute(state) {
    const terms = state.query.toLowerCase().split(/\s+/).filter(Boolean);
    const view = state.all.filter((c) => matches(state, c, terms));
    state.view = view;
    if (state.partial) return;
    const key = state.sort;
    if (key === "path") view.sort((a, b) => (a.pathKey < b.pathKey ? -1 : a.pathKey > b.pathKey ? 1 : a.idx - b.idx));
    else if (key !== "name") view.sort((a, b) => a[key] - b[key] || a.idx - b.idx);
    if (state.dir === "desc") view.reverse();
  }
  function letter(keyword) {
    const m = /[\p{L}\p{N}]/u.exec(keyword);
    return m ? m[0].toUpperCase() : "?";
  }
  function hue(keyword) {
    let sum = 0;
    for (let i = 0; i < keyword.length; i++) sum += keyword.charCodeAt(i);
    return (sum * 37) % 360;
  }
  function cardHtml(c, i) {
    const cls = ["card", "sdemb-card"];
    if (c.status !== "loaded") cls.push("sdemb-unusable");
    if (c.collides_with.length) cls.push("sdemb-collision");
    if (c.reason || c.collides_with.length) cls.push("sdemb-has-notes");
    const hover = c.relpath + "\nsha256 " + (c.shorthash || "(not computed yet)");
    const pic = c.preview ? '<img class="preview sdemb-preview" src="' + esc(c.preview) + '" alt="" loading="lazy">'
      : '<div class="sdemb-placeholder" style="--sdemb-hue:' + hue(c.keyword) + '" aria-hidden="true">' +
        esc(letter(c.keyword)) + "</div>";
    let badges = '<span class="sdemb-badge sdemb-family-' + esc(c.family.toLowerCase()) + '">' + esc(c.family) +
      '</span><span class="sdemb-badge">' + c.vectors + "v</span>";
    if (c.target === "negative") badges += '<span class="sdemb-badge sdemb-neg">neg</span>';
    if (c.weight !== null) badges += '<span class="sdemb-badge">&times;' + esc(c.weight) + "</span>";
    let notes = c.reason ? '<span class="sdemb-reason">' + esc(c.reason) + "</span>" : "";
    if (c.collides_with.length) notes += '<span class="sdemb-clash">same keyword: ' + esc(c.collides_with.join(", ")) + "</span>";
    return '<div class="' + cls.join(" ") + '" tabindex="0" role="button" data-name="' + esc(c.keyword) +
      '" data-id="' + esc(c.card_id) + '" data-sort-default="' + i + '" title="' + esc(hover) + '">' + pic +
      '<div class="button-row"><button type="button" class="sdemb-edit" title="Edit metadata" ' +
      'aria-label="Edit metadata">&#9998;</button></div><div class="sdemb-badges">' + badges + "</div>" +
      '<div class="actions"><div class="additional"><span class="hidden search_terms">' + esc(c.keyword) + " " +
      esc(c.relpath) + " " + esc(c.description) + '</span></div><span class="name">' + esc(c.keyword) +
      '</span><span class="sdemb-folder">' + esc(c.folder) + "</span>" + notes +
      '<span class="description">' + esc(c.description) + "</span></div></div>";
  }
  function renderMore(state, upTo) {
    const end = Math.min(state.view.length, Math.max(upTo || 0, state.rendered + CHUNK));
    let html = "";
    for (let i = state.rendered; i < end; i++) html += cardHtml(state.view[i], i);
    state.sentinel.insertAdjacentHTML("beforebegin", html);
    state.rendered = end;
  }
  function render(state, keep) {
    const box = state.cards;
    const scroll = [box.scrollTop, window.scrollY];
    const want = keep ? state.rendered : 0;
    compute(state);
    state.rendered = 0;
    box.innerHTML = "";
    if (!state.all.length) box.insertAdjacentHTML("beforeend", emptyHtml(state.doc.roots));
    else if (!state.view.length) box.insertAdjacentHTML("beforeend", '<div class="sdemb-empty">No embeddings match.</div>');
    box.appendChild(state.sentinel);
    renderMore(state, want);
    if (keep) {
      box.scrollTop = scroll[0];
      window.scrollTo(window.scrollX, scroll[1]);
    }
    if (state.count) state.count.textContent = countText(state);
  }
  function countText(state) {
    const n = (x) => x.toLocaleString();
    if (!state.partial) return n(state.view.length) + " of " + n(state.all.length);
    const unfiltered = !state.query.trim() && !state.family && !state.folder;
    return (unfiltered ? n(state.doc.counts[""] || 0) : n(state.view.length) + "+") + " of " + n(state.doc.total);
  }
  function emptyHtml(roots) {
    return '<div class="sdemb-empty"><p><b>No embeddings here yet.</b></p><p>Drop Textual Inversion files ' +
      "(<code>.safetensors</code>, <code>.pt</code>, <code>.bin</code>, or embedding <code>.png</code>/" +
      "<code>.webp</code> pictures) into:</p><ul>" + roots.map((r) => "<li><code>" + esc(r) + "</code></li>").join("") +
      "</ul><p>Sub-folders are fine; <code>name.preview.png</code> becomes the preview of <code>name</code>. " +
      "Then press Refresh. For a first look, <code>python -m sd_embeddings samples DIR</code> writes samples.</p></div>";
  }
  function parentOf(folder) {
    const cut = folder.lastIndexOf("/");
    return cut < 0 ? "" : folder.slice(0, cut);
  }
  // Folder tree: rows only for folders whose parents are all unfolded, so hundreds of folders stay short.
  function renderTree(state) {
    const showHidden = state.hiddenMode === "Always", children = new Map();
    const counts = state.partial ? state.doc.counts : {};
    for (const c of state.partial ? [] : state.all) {
      if (c.hidden && !showHidden) continue;
      const parts = c.folder ? c.folder.split("/") : [];
      for (let i = 0; i <= parts.length; i++) counts[parts.slice(0, i).join("/")] = (counts[parts.slice(0, i).join("/")] || 0) + 1;
    }
    const folders = state.doc.folders.filter((f) => f && (showHidden || !hiddenFolder(f)));
    for (const f of folders) {
      const up = parentOf(f);
      if (!children.has(up)) children.set(up, []);
      children.get(up).push(f);
    }
    const many = folders.length > TREE_MANY;
    for (const f of folders) {
      if (state.seenFolders.has(f)) continue;
      state.seenFolders.add(f);
      if (many && children.has(f)) state.collapsed.add(f);
    }
    const rows = [];
    const row = (f, depth) => {
      const kids = f ? children.get(f) : null, open = !state.collapsed.has(f);
      const name = f ? f.split("/").pop() : "All folders", on = (state.folder || "") === f ? " sdemb-on" : "";
      const chevron = kids ? '<button type="button" class="sdemb-chevron" data-toggle="' + esc(f) + '" aria-expanded="' +
        open + '" aria-label="' + (open ? "Fold " : "Unfold ") + esc(name) + '">' + (open ? "&#9662;" : "&#9656;") + "</button>"
        : '<span class="sdemb-chevron-gap"></span>';
      rows.push('<div class="sdemb-folder-row" role="treeitem" aria-level="' + (depth + 1) + '"' +
        (kids ? ' aria-expanded="' + open + '"' : "") + ' style="padding-left:' + depth * 0.9 + 'em">' + (f ? chevron : "") +
        '<button type="button" class="sdemb-folder-btn' + on + '" data-folder="' + esc(f) + '" title="' + esc(f || name) +
        '">' + esc(name) + " <small>" + (counts[f] || 0) + "</small></button></div>");
      if (kids && open) for (const k of kids) row(k, depth + 1);
    };
    row("", 0);
    for (const f of children.get("") || []) row(f, 0);
    state.tree.innerHTML = rows.join("");
    state.tree.setAttribute("role", "tree");
    return folders.length;
  }
  function renderSide(state) {
    const shown = renderTree(state);
    state.pane.classList.toggle("sdemb-no-tree", shown < 1 && !state.treeForced);
    const problems = state.pane.querySelector(".sdemb-problems");
    const rows = state.doc.problems, loud = rows.filter((r) => !r.quiet);
    const open = problems.querySelector("details[open]") ? " open" : "";
    problems.innerHTML = !rows.length ? "" : "<details" + open + "><summary>" + (loud.length ? loud.length +
      " file(s) could not be used" : rows.length + " picture(s) without embedding data") + "</summary><ul>" +
      rows.map((r) => '<li class="' + (r.quiet ? "sdemb-quiet" : "") + '"><code>' + esc(r.relpath) + "</code> <b>" +
        esc(r.status) + "</b>: " + esc(r.reason) + "</li>").join("") + "</ul></details>";
  }
  async function load(state, how) {
    const res = await fetch(state.api + (how === "refresh" ? "/refresh" : "/cards"), how === "refresh" ?
      { method: "POST", headers: writeHeaders("application/json"), body: "{}" } : { method: "GET" });
    if (!res.ok) throw new Error("embeddings list: " + (await reason(res)));
    show(state, await res.json(), true);
  }
  function show(state, doc, keep) {
    decode(state, doc);
    state.version = doc.version;
    renderSide(state);
    render(state, keep);
  }
  NS.reload = (tab) => Promise.all(panes(tab).map((s) => load(s, "reload")));
  NS.refresh = (tab) => Promise.all(panes(tab).map((s) => load(s, "refresh")));
  function panes(tab) {
    return Array.from(app().querySelectorAll(".sdemb-pane")).map((p) => states.get(p)).filter((s) => s && (!tab || s.tab === tab));
  }

  // ---- metadata dialog ---------------------------------------------------------------------------------
  NS.editMetadata = async (state, id) => {
    const res = await fetch(state.api + "/metadata?id=" + encodeURIComponent(id));
    if (!res.ok) return;
    const info = await res.json(), meta = info.metadata, file = info.file;
    const dialog = document.createElement("dialog");
    dialog.className = "sdemb-dialog";
    const option = (v, label) => '<option value="' + v + '"' + ((meta.target || "auto") === v ? " selected" : "") + ">" + label + "</option>";
    dialog.innerHTML = '<form method="dialog"><h3>' + esc(info.card.keyword) + "</h3><dl>" +
      "<dt>File</dt><dd>" + esc(file.relpath) + "</dd><dt>Size</dt><dd>" + esc(file.size.toLocaleString()) + " bytes</dd>" +
      "<dt>Modified</dt><dd>" + esc(file.modified) + "</dd><dt>sha256</dt><dd><code>" +
      esc(file.sha256 || "(" + (file.sha256_state || "pending") + ")") + "</code></dd>" +
      "<dt>Status</dt><dd>" + esc(info.card.status + (info.card.reason ? ": " + info.card.reason : "")) + "</dd></dl>" +
      '<label>Insert into <select name="target">' + option("auto", "auto (" + (info.card.target === "negative" &&
        info.card.target_source === "auto" ? "negative by name/folder" : "prompt box focused last") + ")") +
      option("positive", "positive prompt") + option("negative", "negative prompt") + "</select></label>" +
      '<label>Preferred weight <input name="weight" type="number" step="0.05" min="-100" max="100" placeholder="1"></label>' +
      '<label>Description <textarea name="description" rows="3"></textarea></label>' +
      '<label>Notes <textarea name="notes" rows="3"></textarea></label>' +
      '<label>Replace preview <input name="preview" type="file" accept="image/*"></label>' +
      '<menu><button value="cancel" type="submit">Cancel</button><button value="save" type="submit" class="sdemb-save">Save</button></menu></form>';
    const form = dialog.querySelector("form");
    form.weight.value = meta["preferred weight"] != null ? meta["preferred weight"] : "";
    form.description.value = info.description || "";
    form.notes.value = meta.notes || "";
    dialog.addEventListener("close", async () => {
      dialog.remove();
      if (dialog.returnValue !== "save") return;
      const picture = form.preview.files && form.preview.files[0];
      if (picture) await NS.uploadPreview(state, id, picture);
      const body = { id, target: form.target.value, weight: form.weight.value, description: form.description.value, notes: form.notes.value };
      const saved = await fetch(state.api + "/metadata", { method: "POST", headers: writeHeaders("application/json"), body: JSON.stringify(body) });
      if (!saved.ok) return console.error("sd-embeddings: saving metadata failed:", await reason(saved));
      const card = state.byId.get(id);
      Object.assign(card, (await saved.json()).card);
      card.search = (card.keyword + " " + card.relpath + " " + card.description).toLowerCase();
      render(state, true);
    });
    document.body.appendChild(dialog);
    dialog.showModal();
  };

  // Sends the picture as the body (the host re-encodes it to x.preview.png) and shows the rescanned card.
  NS.uploadPreview = async (state, id, file) => {
    const res = await fetch(state.api + "/preview?id=" + encodeURIComponent(id),
      { method: "POST", headers: writeHeaders(file.type || "image/png"), body: file });
    if (!res.ok) return console.error("sd-embeddings: replacing the preview failed:", await reason(res));
    const answer = await res.json(), card = state.byId.get(id);
    if (answer.shadowed_by) console.warn("sd-embeddings: " + answer.shadowed_by + " is shown instead of " + answer.preview);
    if (card) Object.assign(card, answer.card);
    render(state, true);
  };

  // ---- wiring ------------------------------------------------------------------------------------------
  // Events are delegated from the document, so a pane whose children gradio replaced needs no re-wiring.
  function activate(state, el, other) {
    const card = state.byId && state.byId.get(el.dataset.id);
    if (card) NS.toggle(state.tab, card, other);
  }
  function target(ev) {
    return ev.composedPath ? ev.composedPath()[0] : ev.target;
  }
  function stateOf(el) {
    let pane = el && el.closest ? el.closest(".sdemb-pane") : null;
    const controls = !pane && el && el.closest ? el.closest(".sdemb-controls") : null;
    if (controls && controls.id) pane = byId(controls.id.replace(/_controls$/, "_pane"));
    const state = pane && states.get(pane);
    return state && state.doc ? state : null;
  }
  function onControl(ev) {
    const el = target(ev), state = stateOf(el);
    if (!state || !el.classList) return;
    if (el.classList.contains("sdemb-search")) state.query = el.value;
    else if (el.classList.contains("sdemb-sort")) state.sort = el.value;
    else if (el.classList.contains("sdemb-family")) state.family = el.value;
    else return;
    render(state, false);
  }
  function flipDir(state, button) {
    state.dir = state.dir === "asc" ? "desc" : "asc";
    showDir(state, button);
    render(state, false);
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
      renderTree(state);
      const again = Array.from(state.tree.querySelectorAll(".sdemb-chevron")).find((b) => b.dataset.toggle === f);
      if (again) again.focus();
      return;
    }
    const b = el.closest(".sdemb-folder-btn");
    if (!b) return;
    state.folder = b.dataset.folder || null;
    renderSide(state);
    render(state, false);
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
      load(state, "refresh").catch((e) => console.error("sd-embeddings:", e)).finally(() => (button.disabled = false));
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
      if (res.ok && (await res.json()).version !== state.version) await load(state, "reload");
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
      if (seen.some((s) => s.isIntersecting) && state.rendered < state.view.length) renderMore(state);
    }, { rootMargin: "600px" }).observe(sentinel);
    const every = parseInt(pane.dataset.watch || "0", 10);
    if (every > 0) state.timer = setInterval(() => poll(state), every);
    states.set(pane, state);
    return state;
  }
  // The WebUI (1.8+) moves the first "{t}_controls" it finds into its tab bar; a later re-render brings a second
  // copy inside the pane. The moved one is what the user sees, so it stays the live one and the copy goes.
  function controlsOf(state) {
    const inside = state.pane.querySelector(".sdemb-controls");
    const moved = Array.from(app().querySelectorAll("#" + CSS.escape(state.t + "_controls")))
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
    if (doc && (!state.doc || doc.version > state.version)) show(state, doc, !!state.doc);
    else if (state.doc) show(state, state.doc, true);
    if (!state.doc || state.partial) load(state, "reload").catch((e) => console.error("sd-embeddings:", e));
  }
  NS.init = () => app().querySelectorAll(".sdemb-pane").forEach(attach);
  let queued = false;
  const observer = new MutationObserver(() => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => { queued = false; NS.init(); });
  });
  observer.observe(document.documentElement, { childList: true, subtree: true, attributes: true,
    attributeFilter: ["data-sdemb-init"] });
  NS.states = states;
  NS.ready = true;
  if (document.readyState !== "loading") NS.init();
  else document.addEventListener("DOMContentLoaded", NS.init);
})();
