// Textual Inversion tab, the dialog's extra sections (loaded after part 3, before part 4, which starts the tab):
// where the preview comes from ("Use the selected image", a plain x.png that shadows x.preview.png), what the
// Civitai sidecars say, and the inspector (per-vector norms as an SVG bar chart, zero/NaN vectors, files with the
// same vectors, nearest vocabulary tokens). Everything shown is text from the host, escaped here.
(function () {
  "use strict";
  const NS = (window.sdEmbeddings = window.sdEmbeddings || {});
  if (NS.ready) return; // loaded twice: the first copy is running
  const lib = (NS.lib = NS.lib || {});
  const esc = (text) => lib.esc(text);
  const KINDS = { own: "the embedding's own picture", upload: "an uploaded preview", civitai: "Civitai Browser+'s first saved image", file: "a picture beside the file" };

  // ---- preview: the WebUI's gallery --------------------------------------------------------------------------
  // The image the WebUI's "replace preview" would take: the selected thumbnail of the txt2img/img2img result
  // gallery (gradio 3.41 and 4.x mark it button.thumbnail-item.selected), else the first one, as the WebUI's
  // selected_gallery_index_id falls back to 0. undefined: there is no gallery at all.
  lib.galleryImage = (tab) => {
    const gallery = lib.byId(tab + "_gallery");
    if (!gallery) return undefined;
    return gallery.querySelector(".thumbnail-item.selected img") || gallery.querySelector(".thumbnail-item img") ||
      gallery.querySelector(".preview img") || null;
  };
  async function useGalleryImage(state, id, dialog, replace) {
    const status = dialog.querySelector(".sdemb-preview-status"), img = lib.galleryImage(state.tab);
    if (!img || !img.src) return (status.textContent = "No image in the gallery yet: generate one first.");
    status.textContent = "Saving the selected image...";
    let blob;
    try {
      const res = await fetch(img.src);
      if (!res.ok) throw new Error("HTTP " + res.status);
      blob = await res.blob();
    } catch (e) {
      return (status.textContent = "Could not read the selected image: " + e.message);
    }
    const answer = await NS.uploadPreview(state, id, blob, replace());
    status.textContent = answer.error ? "Not saved: " + answer.error : "Saved as " + answer.preview +
      (answer.shadowed_by ? " (" + answer.shadowed_by + " is still shown instead)" : "") + ".";
  }
  function previewHtml(state, info) {
    const p = info.preview || {};
    let html = p.shown ? '<p class="sdemb-note">Shown: <code>' + esc(p.shown) + "</code>, " + esc(KINDS[p.kind] || "") + ".</p>" : "";
    if (p.shadowed_by) {
      html += '<p class="sdemb-note sdemb-warn"><code>' + esc(p.shadowed_by) + "</code> takes precedence over <code>" +
        esc(p.upload_name) + "</code>, where a new picture would go.</p>" +
        '<label class="sdemb-check"><input type="checkbox" name="replace_shown" checked> Replace <code>' +
        esc(p.shadowed_by) + "</code> instead</label>";
    }
    // The standalone host makes no images, so it has no gallery and no button: only the WebUI's pages have one.
    if (lib.galleryImage(state.tab) !== undefined) {
      html += '<button type="button" class="sdemb-use-gallery">Use the selected image</button>';
    }
    return html + '<p class="sdemb-preview-status sdemb-note" aria-live="polite"></p>';
  }

  // ---- Civitai sidecars ------------------------------------------------------------------------------------
  function civitaiHtml(c) {
    if (!c || !c.sources || (!c.sources.length && !c.problems.length)) return "";
    const row = (label, value) => (value ? "<dt>" + label + "</dt><dd>" + esc(value) + "</dd>" : "");
    const name = [c.model_name, c.version_name].filter(Boolean).join(" / ");
    let html = '<section class="sdemb-civitai"><h4>Civitai</h4><dl>' + row("Base model", c.base_model) + row("Model", name) +
      row("Trigger words", c.trigger_words.join(", ")) + row("Images", c.images ? String(c.images) : "") +
      row("From", c.sources.join(", ")) + "</dl>";
    if (c.mismatch) html += '<p class="sdemb-note sdemb-warn">' + esc(c.mismatch) + "</p>";
    for (const problem of c.problems) html += '<p class="sdemb-note sdemb-warn">Ignored ' + esc(problem) + "</p>";
    return html + "</section>";
  }

  // ---- inspector -------------------------------------------------------------------------------------------
  // One bar per vector, height = norm / largest norm; zero vectors get a red mark at the base, NaN ones a red bar.
  function chart(part) {
    const n = part.norms.length, w = 300, h = 70, top = Math.max(...part.norms.filter((x) => x !== null), 1e-9);
    const step = w / Math.max(n, 1), bar = Math.min(12, Math.max(1, step * 0.8));
    let bars = "";
    part.norms.forEach((norm, i) => {
      const x = (i * step + (step - bar) / 2).toFixed(2), bad = norm === null, zero = norm === 0;
      const height = bad ? h : zero ? 3 : Math.max(1, (norm / top) * (h - 4));
      const title = "vector " + (i + 1) + ": " + (bad ? "NaN or infinite values" : zero ? "all zeros" : "norm " + norm);
      bars += '<rect class="' + (bad ? "sdemb-bar-bad" : zero ? "sdemb-bar-zero" : "sdemb-bar") + '" x="' + x + '" y="' +
        (h - height).toFixed(2) + '" width="' + bar.toFixed(2) + '" height="' + height.toFixed(2) + '"><title>' + esc(title) + "</title></rect>";
    });
    const label = (part.key ? part.key + ", " : "") + n + (n === 1 ? " vector" : " vectors") + " of " + part.width +
      ", largest norm " + top.toFixed(3);
    const flags = (part.zero.length ? part.zero.length + " zero" : "") + (part.nonfinite.length ? (part.zero.length ? ", " : "") +
      part.nonfinite.length + " NaN/infinite" : "");
    return '<figure class="sdemb-chart" data-part="' + esc(part.key) + '"><svg viewBox="0 0 ' + w + " " + h +
      '" preserveAspectRatio="none" role="img" aria-label="' + esc(label) + '">' + bars + "</svg><figcaption>" + esc(label) +
      (flags ? ' &middot; <span class="sdemb-warn">' + esc(flags) + " (vectors " +
        esc(part.zero.concat(part.nonfinite).map((i) => i + 1).join(", ")) + ")</span>" : "") + "</figcaption></figure>";
  }
  function inspectHtml(found) {
    if (found.error) return '<p class="sdemb-note sdemb-warn">' + esc(found.error) + "</p>";
    let html = found.parts.map(chart).join("") + '<p class="sdemb-note">Vector fingerprint <code>' + esc(found.fingerprint.slice(0, 12)) + "</code>";
    if (found.same_vectors.length) {
      html += '</p><p class="sdemb-note sdemb-twins">Same vectors as ' + found.same_vectors.map((t) => "<code>" + esc(t.relpath) +
        "</code>").join(", ") + ": the same embedding in another file or format";
    }
    if (!found.compared_all) html += " (not every file of this shape was compared yet)";
    html += "</p>";
    const near = found.nearest;
    if (near.state === "ready") html += '<div class="sdemb-nearest"><p class="sdemb-note">Finding the nearest tokens...</p></div>';
    else if (near.state === "loadable") html += '<div class="sdemb-nearest"><button type="button" class="sdemb-find-tokens">Find nearest tokens</button> <span class="sdemb-note">' + esc(near.detail) + "</span></div>";
    else html += '<p class="sdemb-note sdemb-nearest">Nearest tokens: ' + esc(near.detail) + ".</p>";
    return html;
  }
  function tokensHtml(answer) {
    let html = '<p class="sdemb-note">Nearest vocabulary tokens (cosine similarity), from ' + esc(answer.source) + ":</p>";
    for (const part of answer.parts) {
      if (part.error) { html += '<p class="sdemb-note sdemb-warn">' + esc(part.error) + "</p>"; continue; }
      html += '<table class="sdemb-tokens"><caption>' + esc(part.key || "vectors") + "</caption>" + part.vectors.map((row, i) =>
        "<tr><th>" + (i + 1) + "</th><td>" + (row ? row.map((t) => "<code>" + esc(t.token) + "</code> <small>" +
          esc(t.cosine.toFixed(2)) + "</small>").join(" ") : '<span class="sdemb-warn">no direction (zero)</span>') + "</td></tr>").join("") + "</table>";
    }
    return html;
  }
  async function findTokens(state, id, box) {
    box.innerHTML = '<p class="sdemb-note">Finding the nearest tokens...</p>';
    const res = await fetch(state.api + "/inspect/nearest?id=" + encodeURIComponent(id),
      { method: "POST", headers: lib.writeHeaders("application/json"), body: "{}" });
    box.innerHTML = res.ok ? tokensHtml(await res.json()) : '<p class="sdemb-note sdemb-warn">Nearest tokens: ' + esc(await lib.reason(res)) + "</p>";
  }
  async function inspect(state, id, dialog) {
    const holder = dialog.querySelector(".sdemb-inspector");
    const res = await fetch(state.api + "/inspect?id=" + encodeURIComponent(id));
    if (!res.ok) return (holder.innerHTML = '<p class="sdemb-note sdemb-warn">' + esc(await lib.reason(res)) + "</p>");
    const found = await res.json();
    holder.innerHTML = "<h4>Vectors</h4>" + inspectHtml(found);
    const box = holder.querySelector(".sdemb-nearest");
    if (found.nearest && found.nearest.state === "ready") await findTokens(state, id, box);
    const button = holder.querySelector(".sdemb-find-tokens");
    if (button) button.addEventListener("click", () => findTokens(state, id, box));
  }

  // A description that only the Civitai sidecar has is shown as the field's placeholder, so Save never copies it
  // into x.json as the user's own.
  function civitaiPlaceholder(info, dialog) {
    const c = info.civitai, field = dialog.querySelector("textarea[name=description]");
    if (!field || !c || !c.description || (info.metadata && info.metadata.description) || info.description !== c.description) return;
    field.value = "";
    field.placeholder = "From Civitai: " + c.description.slice(0, 300);
  }
  NS.dialogExtras = (state, id, info, dialog) => {
    const extras = dialog.querySelector(".sdemb-extras"), preview = dialog.querySelector(".sdemb-preview-extras");
    civitaiPlaceholder(info, dialog);
    if (preview) preview.innerHTML = previewHtml(state, info);
    if (extras) extras.innerHTML = civitaiHtml(info.civitai) + '<section class="sdemb-inspector"><p class="sdemb-note">Reading the vectors...</p></section>';
    const use = dialog.querySelector(".sdemb-use-gallery");
    const replace = () => (dialog.querySelector("input[name=replace_shown]:checked") ? "shown" : "");
    if (use) use.addEventListener("click", () => useGalleryImage(state, id, dialog, replace));
    if (extras) inspect(state, id, dialog).catch((e) => console.error("sd-embeddings: inspector:", e));
  };
})();
