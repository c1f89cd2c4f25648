// Textual Inversion tab, part 2 of 4: the cards document, filtering and sorting, and drawing cards, folder tree,
// count, empty state and problems (the only renderer of the tab; see part 1 for how the parts fit together).
(function () {
  "use strict";
  const NS = (window.sdEmbeddings = window.sdEmbeddings || {});
  if (NS.ready) return; // loaded twice: the first copy is running
  const lib = (NS.lib = NS.lib || {});
  const CHUNK = 60;
  const TREE_MANY = 40; // with more folders than this, folders below the first level start folded
  const HIDDEN_MIN_SEARCH = 4;
  const esc = (text) => lib.esc(text);

  // Compact rows -> card objects (the server's card_rows.py writes them and reads them back the same way): folders
  // and shared texts are indexes, 0 stands for an empty list, no preview or the keyword being the file's stem.
  const SHARED = ["format", "family", "status", "reason", "target", "target_source", "base_model"];
  function stem(file) {
    const dot = file.lastIndexOf(".");
    return dot > 0 ? file.slice(0, dot) : file;
  }
  function expand(state, doc, folders) {
    const at = {}, strings = doc.strings;
    doc.fields.forEach((name, i) => (at[name] = i));
    return doc.cards.map((row) => {
      const root = row[at.root], folder = folders[row[at.folder]], file = row[at.file], keyword = row[at.keyword];
      const relpath = folder ? folder + "/" + file : file, preview = row[at.preview];
      const card = { card_id: root + "/" + relpath, relpath, folder,
        keyword: typeof keyword === "string" ? keyword : stem(file),
        vectors: row[at.vectors], size: row[at.size], mtime: row[at.mtime], description: row[at.description],
        shorthash: row[at.shorthash], weight: row[at.weight] || null, hidden: !!row[at.hidden],
        common_word: !!row[at.common_word], collides_with: row[at.collides_with] || [],
        same_vectors: row[at.same_vectors] || [],
        preview: preview ? state.api + "/preview?root=" + root + "&path=" +
          encodeURIComponent(folder ? folder + "/" + preview[0] : preview[0]) + "&v=" + preview[1] : "" };
      for (const name of SHARED) card[name] = strings[row[at[name]]];
      return card;
    });
  }
  // ``all``: the cards of every page, expanded; else the document's own.
  function decode(state, doc, all) {
    state.doc = doc;
    state.all = all || expand(state, doc, doc.folders);
    state.all.forEach((card, idx) => {
      card.idx = idx;
      card.search = (card.keyword + " " + card.relpath + " " + card.description).toLowerCase();
      card.pathKey = card.relpath.toLowerCase();
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
    if (c.reason || c.collides_with.length || (c.same_vectors && c.same_vectors.length)) cls.push("sdemb-has-notes");
    const hover = c.relpath + "\nsha256 " + (c.shorthash || "(not computed yet)");
    const pic = c.preview ? '<img class="preview sdemb-preview" src="' + esc(c.preview) + '" alt="" loading="lazy">'
      : '<div class="sdemb-placeholder" style="--sdemb-hue:' + hue(c.keyword) + '" aria-hidden="true">' +
        esc(letter(c.keyword)) + "</div>";
    let badges = '<span class="sdemb-badge sdemb-family-' + esc(c.family.toLowerCase()) + '">' + esc(c.family) +
      '</span><span class="sdemb-badge">' + c.vectors + "v</span>";
    if (c.target === "negative") badges += '<span class="sdemb-badge sdemb-neg">neg</span>';
    if (c.weight !== null) badges += '<span class="sdemb-badge">&times;' + esc(c.weight) + "</span>";
    if (c.base_model) badges += '<span class="sdemb-badge sdemb-base" title="Base model (Civitai)">' + esc(c.base_model) + "</span>";
    if (c.common_word) badges += '<span class="sdemb-badge sdemb-common" title="' + esc("'" + c.keyword +
      "' is a common English word: typing it anywhere in a prompt uses this embedding") + '">word</span>';
    let notes = c.reason ? '<span class="sdemb-reason">' + esc(c.reason) + "</span>" : "";
    if (c.collides_with.length) notes += '<span class="sdemb-clash">same keyword: ' + esc(c.collides_with.join(", ")) + "</span>";
    if (c.same_vectors && c.same_vectors.length) notes += '<span class="sdemb-twin">same vectors: ' + esc(c.same_vectors.join(", ")) + "</span>";
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
    if (lib.afterRender) lib.afterRender(state); // groups (part 3b) go in front of the cards
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
    return (unfiltered ? n(state.doc.counts[0] || 0) : n(state.view.length) + "+") + " of " + n(state.doc.total);
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
    // A Map: folder names are a stranger's text ("constructor", "__proto__" are not counts of a plain object).
    const counts = new Map(state.partial ? state.doc.folders.map((f, i) => [f, state.doc.counts[i]]) : []);
    const direct = new Map(); // cards in each folder itself: thousands of cards share a folder
    for (const c of state.partial ? [] : state.all) {
      if (!c.hidden || showHidden) direct.set(c.folder, (direct.get(c.folder) || 0) + 1);
    }
    for (const [folder, count] of direct) {
      const parts = folder ? folder.split("/") : [];
      for (let i = 0; i <= parts.length; i++) {
        const key = parts.slice(0, i).join("/");
        counts.set(key, (counts.get(key) || 0) + count);
      }
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
        '">' + esc(name) + " <small>" + (counts.get(f) || 0) + "</small></button></div>");
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
  Object.assign(lib, { expand, decode, render, renderMore, renderTree, renderSide, hiddenShown });
})();
