// Textual Inversion tab, part 3 of 4: loading the cards document, the metadata dialog and the preview upload
// (see part 1 for how the parts fit together).
(function () {
  "use strict";
  const NS = (window.sdEmbeddings = window.sdEmbeddings || {});
  if (NS.ready) return; // loaded twice: the first copy is running
  const lib = (NS.lib = NS.lib || {});
  const esc = (text) => lib.esc(text);

  async function fetchDoc(url, init) {
    const res = await fetch(url, init || { method: "GET" });
    if (!res.ok) throw new Error("embeddings list: " + (await lib.reason(res)));
    return res.json();
  }
  // Page 0 (with folders, problems, groups), then the further pages of the same build, two asked at a time (one
  // travels while the host builds the next), then one redraw. The latest load wins; a build the host no longer
  // holds (the library changed meanwhile) starts again.
  async function load(state, how, tries) {
    const mine = (state.loads = (state.loads || 0) + 1);
    state.busy = true;
    try {
      const head = await fetchDoc(state.api + (how === "refresh" ? "/refresh" : "/cards"), how === "refresh" ?
        { method: "POST", headers: lib.writeHeaders("application/json"), body: "{}" } : null);
      const parts = [], pages = head.pages || 1;
      let next = 1;
      const fetcher = async () => {
        while (next < pages) {
          const page = next++;
          parts[page - 1] = await fetchDoc(state.api + "/cards?page=" + page + "&build=" + head.build);
        }
      };
      const done = await Promise.all([fetcher(), fetcher()]).catch((e) => ((tries || 0) < 2 ? null : Promise.reject(e)));
      if (!done) return load(state, "reload", (tries || 0) + 1);
      if (state.loads !== mine) return;
      const all = lib.expand(state, head, head.folders);
      for (const part of parts) for (const card of lib.expand(state, part, head.folders)) all.push(card);
      show(state, head, true, all);
    } finally {
      if (state.loads === mine) state.busy = false;
    }
  }
  function show(state, doc, keep, all) {
    lib.decode(state, doc, all);
    state.version = doc.version;
    lib.renderSide(state);
    lib.render(state, keep);
  }
  NS.reload = (tab) => Promise.all(panes(tab).map((s) => load(s, "reload")));
  NS.refresh = (tab) => Promise.all(panes(tab).map((s) => load(s, "refresh")));
  function panes(tab) {
    return Array.from(lib.app().querySelectorAll(".sdemb-pane")).map((p) => NS.states.get(p)).filter((s) => s && (!tab || s.tab === tab));
  }
  lib.load = load;
  lib.show = show;
  // Inside the WebUI the theme's colours and fonts are defined for the gradio container only (at the document's
  // body its variables resolve to nothing, and the dialog was transparent): the dialog goes inside it.
  function dialogParent() {
    const app = lib.app();
    return (app !== document && app.querySelector(".gradio-container")) || document.body;
  }
  lib.dialogParent = dialogParent;

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
      '<div class="sdemb-extras"></div>' +
      '<label>Insert into <select name="target">' + option("auto", "auto (" + (info.card.target === "negative" &&
        info.card.target_source === "auto" ? "negative by name/folder" : "prompt box focused last") + ")") +
      option("positive", "positive prompt") + option("negative", "negative prompt") + "</select></label>" +
      '<label>Preferred weight <input name="weight" type="number" step="0.05" min="-100" max="100" placeholder="1"></label>' +
      '<label>Description <textarea name="description" rows="3"></textarea></label>' +
      '<label>Notes <textarea name="notes" rows="3"></textarea></label>' +
      '<label>Replace preview <input name="preview" type="file" accept="image/*"></label><div class="sdemb-preview-extras"></div>' +
      '<menu><button value="cancel" type="submit">Cancel</button><button value="save" type="submit" class="sdemb-save">Save</button></menu></form>';
    const form = dialog.querySelector("form");
    form.weight.value = meta["preferred weight"] != null ? meta["preferred weight"] : "";
    form.description.value = info.description || "";
    form.notes.value = meta.notes || "";
    dialog.addEventListener("close", async () => {
      dialog.remove();
      if (dialog.returnValue !== "save") return;
      const picture = form.preview.files && form.preview.files[0];
      if (picture) await NS.uploadPreview(state, id, picture, form.replace_shown && form.replace_shown.checked ? "shown" : "");
      const body = { id, target: form.target.value, weight: form.weight.value, description: form.description.value, notes: form.notes.value };
      const saved = await fetch(state.api + "/metadata", { method: "POST", headers: lib.writeHeaders("application/json"), body: JSON.stringify(body) });
      if (!saved.ok) return console.error("sd-embeddings: saving metadata failed:", await lib.reason(saved));
      const card = state.byId.get(id);
      Object.assign(card, (await saved.json()).card);
      card.search = (card.keyword + " " + card.relpath + " " + card.description).toLowerCase();
      lib.render(state, true);
    });
    dialogParent().appendChild(dialog);
    dialog.showModal();
    if (NS.dialogExtras) NS.dialogExtras(state, id, info, dialog); // sd_embeddings_3_inspector.js
  };

  // Sends the picture as the body (the host re-encodes it to x.preview.png, or with replace "shown" to the x.png that
  // takes precedence over it) and shows the rescanned card. Returns the host's answer, or {error} with the reason.
  NS.uploadPreview = async (state, id, file, replace) => {
    const type = /^image\//.test(file.type || "") ? file.type : "image/png";
    const res = await fetch(state.api + "/preview?id=" + encodeURIComponent(id) + (replace ? "&replace=" + replace : ""),
      { method: "POST", headers: lib.writeHeaders(type), body: file });
    if (!res.ok) {
      const error = await lib.reason(res);
      console.error("sd-embeddings: replacing the preview failed:", error);
      return { error };
    }
    const answer = await res.json(), card = state.byId.get(id);
    if (answer.shadowed_by) console.warn("sd-embeddings: " + answer.shadowed_by + " is shown instead of " + answer.preview);
    if (card) Object.assign(card, answer.card);
    lib.render(state, true);
    return answer;
  };
})();
