// Textual Inversion tab, part 1 of 4: the namespace, shared helpers, and prompt editing (insert/remove/weights/toast).
// The tab is one classic script in four files, one namespace (window.sdEmbeddings), safe to load twice. The WebUI
// loads every javascript/*.js of an extension in alphabetical order; the standalone host inlines the same files in the
// same order (sd_embeddings/tab/shell.py SCRIPTS). Parts share functions through window.sdEmbeddings.lib; part 4
// attaches the panes once the others have defined theirs.
(function () {
  "use strict";
  const NS = (window.sdEmbeddings = window.sdEmbeddings || {});
  if (NS.ready) return; // loaded twice: the first copy is running
  const lib = (NS.lib = NS.lib || {});
  NS.states = NS.states || new WeakMap(); // pane -> state
  const lastBox = {}; // tab -> "positive" | "negative"
  const touched = new WeakSet(); // textareas the user has put a caret in

  lib.app = () => (typeof window.gradioApp === "function" ? window.gradioApp() : document);
  lib.byId = (id) => lib.app().querySelector("#" + CSS.escape(id)) || document.getElementById(id);
  lib.esc = (text) =>
    String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  // Writes carry the page token the host put in <meta name="sd-embeddings-token"> (refused without it); a refused
  // request's answer is JSON whose "detail" is a one-line reason.
  lib.writeHeaders = (type) => {
    const meta = lib.app().querySelector('meta[name="sd-embeddings-token"]') || document.querySelector('meta[name="sd-embeddings-token"]');
    return { "Content-Type": type, "X-SD-Embeddings-Token": meta ? meta.content : "" };
  };
  lib.reason = async (res) => {
    const text = await res.text().catch(() => "");
    try { return "HTTP " + res.status + ": " + JSON.parse(text).detail; } catch (e) { return "HTTP " + res.status + " " + text.slice(0, 200); }
  };
  function reEscape(text) {
    return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  }

  // ---- prompt boxes ------------------------------------------------------------------------------------
  function promptBox(tab, negative) {
    const holder = lib.byId(tab + (negative ? "_neg_prompt" : "_prompt"));
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
  // The WebUI's setting "bare keywords trigger embeddings" (window.opts; the standalone host sets it too): when off,
  // only ComfyUI's embedding:name uses an embedding, so a click inserts that form.
  lib.explicitOnly = () => !!(window.opts && window.opts.sd_embeddings_bare_keywords === false);
  NS.promptText = (keyword, weight) => {
    const name = (lib.explicitOnly() ? "embedding:" : "") + NS.escapePrompt(keyword);
    return weight !== null && weight !== undefined && weight !== 1 ? "(" + name + ":" + weight + ")" : name;
  };
  // A whole keyword: a letter, digit, '-' or '_' next to it makes it part of a longer word (sample-image-v2,
  // mysample-image, sample-images); start/end, spaces, commas, brackets and the ":weight" form delimit it.
  const WORD = "\\p{L}\\p{N}_\\-";
  // Also ComfyUI's embedding:name, embedding:folder/name and embedding:name.pt forms of the same keyword.
  function pattern(keyword) {
    const bare = reEscape(NS.escapePrompt(keyword));
    const n = "(?:embedding:\\s*(?:[^\\s,()[\\]:/]+/)*" + bare + "(?:\\.(?:safetensors|pt|bin|png|webp))?|" + bare + ")";
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
  // Which box a card (or a group's member) goes to: "negative"/"positive", or "focused" = the one used last.
  lib.isNegative = (tab, target, other) => {
    const negative = target === "negative" || (target === "focused" && lastBox[tab] === "negative");
    return other ? !negative : negative;
  };
  // Puts text at the caret (end of the box if the user never put a caret there); the caret then follows it.
  lib.insertText = (box, text, sep) => {
    const pos = touched.has(box) && box.selectionEnd !== null ? box.selectionEnd : box.value.length;
    const done = NS.insertIntoPrompt(box.value, text, pos, sep);
    box.value = done.value;
    if (touched.has(box)) box.setSelectionRange(done.caret, done.caret);
  };
  NS.toggle = (tab, card, other) => {
    const negative = lib.isNegative(tab, card.target, other);
    const box = promptBox(tab, negative);
    if (!box) return null;
    const sep = separator();
    const removed = NS.removeFromPrompt(box.value, card.keyword, sep);
    if (removed !== null) {
      box.value = removed;
    } else {
      lib.insertText(box, NS.promptText(card.keyword, card.weight), sep);
      if (card.status !== "loaded") NS.toast(box, card.keyword + " stays plain text: " + (card.reason || card.status));
    }
    fireInput(box);
    return negative ? "negative" : "positive";
  };
  Object.assign(lib, { promptBox, separator, fireInput });
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
})();
