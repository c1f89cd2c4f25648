// Textual Inversion tab, part 3b: groups. A group card (in front of the embedding cards, drawn after each render)
// inserts every member into its own prompt box with one click and takes them all out with the next; a dialog
// creates, edits and deletes groups (the host writes <name>.tigroup.json). See part 1 for how the parts fit.
(function () {
  "use strict";
  const NS = (window.sdEmbeddings = window.sdEmbeddings || {});
  if (NS.ready) return; // loaded twice: the first copy is running
  const lib = (NS.lib = NS.lib || {});
  const esc = (text) => lib.esc(text);

  function visible(state, g) {
    if (g.hidden && !lib.hiddenShown(state)) return false;
    if (state.folder && g.folder !== state.folder && !g.folder.startsWith(state.folder + "/")) return false;
    const fam = state.family;
    if (fam === "usable" ? g.problem || g.members.some((m) => m.status !== "loaded")
      : fam && !g.members.some((m) => m.family === fam)) return false;
    const text = (g.name + " " + g.description + " " + g.members.map((m) => m.keyword).join(" ")).toLowerCase();
    return state.query.toLowerCase().split(/\s+/).filter(Boolean).every((t) => text.includes(t));
  }
  // What the card says about members that will stay plain text.
  function notes(g) {
    if (g.problem) return '<span class="sdemb-reason">cannot be used: ' + esc(g.problem) + "</span>";
    const missing = g.members.filter((m) => m.status === "missing").map((m) => m.keyword);
    const other = g.members.filter((m) => m.status === "incompatible" || m.status === "failed");
    let out = missing.length ? '<span class="sdemb-reason">missing: ' + esc(missing.join(", ")) + "</span>" : "";
    if (other.length) out += '<span class="sdemb-reason">not for this model: ' +
      esc(other.map((m) => m.keyword + " (" + (m.reason || m.status) + ")").join("; ")) + "</span>";
    return out;
  }
  function groupHtml(g) {
    const cls = ["card", "sdemb-card", "sdemb-group"], note = notes(g);
    if (g.problem || !g.members.some((m) => m.status === "loaded")) cls.push("sdemb-unusable");
    if (note) cls.push("sdemb-has-notes");
    const list = g.members.map((m) => NS.promptText(m.keyword, m.weight)).join(", ");
    let badges = '<span class="sdemb-badge sdemb-group-badge">group</span>';
    if (!g.problem) badges += '<span class="sdemb-badge">' + g.members.length + "&times;</span>";
    if (g.members.length && g.members.every((m) => m.box === "negative")) badges += '<span class="sdemb-badge sdemb-neg">neg</span>';
    return '<div class="' + cls.join(" ") + '" tabindex="0" role="button" data-group="' + esc(g.id) + '" title="' +
      esc(g.relpath + "\n" + list) + '"><div class="sdemb-placeholder sdemb-group-art" aria-hidden="true">&#10070;</div>' +
      '<div class="button-row"><button type="button" class="sdemb-edit sdemb-group-edit" title="Edit group" ' +
      'aria-label="Edit group">&#9998;</button></div><div class="sdemb-badges">' + badges + '</div><div class="actions">' +
      '<span class="name">' + esc(g.name) + '</span><span class="sdemb-folder">' + esc(g.folder) + "</span>" + note +
      '<span class="description sdemb-members">' + esc(list) + "</span></div></div>";
  }
  function addButton(state) {
    const controls = state.controls;
    if (!controls || controls.querySelector(".sdemb-new-group")) return;
    const refresh = controls.querySelector(".sdemb-refresh");
    const html = '<button type="button" class="sdemb-new-group" title="Save a set of embeddings as one card">New group</button>';
    if (refresh) refresh.insertAdjacentHTML("beforebegin", html);
    else controls.insertAdjacentHTML("beforeend", html);
  }
  lib.afterRender = (state) => {
    addButton(state);
    const groups = (state.doc && state.doc.groups) || [];
    state.groups = new Map(groups.map((g) => [g.id, g]));
    const shown = groups.filter((g) => visible(state, g));
    if (shown.length) state.cards.insertAdjacentHTML("afterbegin", shown.map(groupHtml).join(""));
  };

  // Every member in its box; when all are there already, every one is taken out (whole keywords only, as cards).
  NS.toggleGroup = (tab, group, other) => {
    if (group.problem) return null;
    const sep = lib.separator();
    const plan = group.members.map((m) => ({ m, box: lib.promptBox(tab, lib.isNegative(tab, m.box, other)) }))
      .filter((p) => p.box);
    const present = plan.length > 0 && plan.every((p) => NS.removeFromPrompt(p.box.value, p.m.keyword, sep) !== null);
    const changed = new Set(), plain = [];
    for (const p of plan) {
      const removed = NS.removeFromPrompt(p.box.value, p.m.keyword, sep);
      if (present) p.box.value = removed;
      else if (removed !== null) continue;
      else {
        lib.insertText(p.box, NS.promptText(p.m.keyword, p.m.weight), sep);
        if (p.m.status !== "loaded") plain.push(p.m.keyword + " (" + (p.m.reason || p.m.status) + ")");
      }
      changed.add(p.box);
    }
    changed.forEach((box) => lib.fireInput(box));
    if (plain.length) NS.toast(plan[0].box, "Stays plain text: " + plain.join("; "));
    return present ? "removed" : "inserted";
  };

  // Capture phase: group cards and the New group button are handled here and go no further (part 4's card
  // handler would look them up as embeddings).
  function onEvent(ev) {
    const el = ev.composedPath ? ev.composedPath()[0] : ev.target;
    if (!el || !el.closest || (ev.type === "keydown" && ev.key !== "Enter" && ev.key !== " ")) return;
    const card = el.closest(".sdemb-group"), add = el.closest(".sdemb-new-group");
    const state = (card || add) && lib.stateOf(card || add);
    if (!state || (ev.type === "keydown" && (add || el !== card))) return;
    ev.stopPropagation();
    ev.preventDefault();
    if (add) return NS.editGroup(state, null);
    const group = state.groups && state.groups.get(card.dataset.group);
    if (!group) return;
    if (el.closest(".sdemb-group-edit")) return NS.editGroup(state, group);
    NS.toggleGroup(state.tab, group, ev.shiftKey || ev.altKey);
  }
  document.addEventListener("click", onEvent, true);
  document.addEventListener("keydown", onEvent, true);

  // ---- the group dialog ------------------------------------------------------------------------------
  function option(value, label, chosen) {
    return '<option value="' + value + '"' + (value === chosen ? " selected" : "") + ">" + label + "</option>";
  }
  function memberRow(m) {
    return '<div class="sdemb-member"><input name="keyword" list="sdemb-keywords" placeholder="keyword" value="' +
      esc(m.keyword || "") + '" aria-label="Keyword"><input name="weight" type="number" step="0.05" min="-100" ' +
      'max="100" placeholder="weight" value="' + esc(m.weight == null ? "" : m.weight) + '" aria-label="Weight">' +
      '<select name="mtarget" aria-label="Prompt box">' + option("group", "as group", m.target || "group") +
      option("positive", "positive", m.target) + option("negative", "negative", m.target) + "</select>" +
      '<button type="button" class="sdemb-member-remove" title="Remove" aria-label="Remove member">&times;</button></div>';
  }
  function dialogHtml(state, g) {
    const names = Array.from(new Set(state.all.map((c) => c.keyword))).sort((a, b) => a.localeCompare(b));
    return '<form method="dialog"><h3>' + (g ? "Edit group" : "New group") + "</h3>" +
      '<label>Name <input name="name" maxlength="80" required value="' + esc(g ? g.name : "") + '"></label>' +
      '<label>Description <textarea name="description" rows="2"></textarea></label>' +
      '<label>Insert into <select name="target">' + option("auto", "auto (each member as its card)", g ? g.target : "negative") +
      option("positive", "positive prompt", g ? g.target : "") + option("negative", "negative prompt", g ? g.target : "negative") +
      '</select></label><div class="sdemb-members-edit">' + (g ? g.members : [{}]).map(memberRow).join("") +
      '</div><button type="button" class="sdemb-member-add">Add member</button><datalist id="sdemb-keywords">' +
      names.map((n) => '<option value="' + esc(n) + '">').join("") + '</datalist><p class="sdemb-error" role="alert"></p>' +
      "<menu>" + (g ? '<button type="button" class="sdemb-delete">Delete</button>' : "") +
      '<button type="button" class="sdemb-cancel">Cancel</button><button type="submit" class="sdemb-save">Save</button>' +
      "</menu></form>";
  }
  function showGroups(groups) {
    lib.app().querySelectorAll(".sdemb-pane").forEach((pane) => {
      const s = NS.states.get(pane);
      if (s && s.doc) {
        s.doc.groups = groups;
        lib.render(s, true);
      }
    });
  }
  async function send(state, path, body, dialog) {
    const res = await fetch(state.api + path, { method: "POST", headers: lib.writeHeaders("application/json"),
      body: JSON.stringify(body) });
    if (!res.ok) {
      dialog.querySelector(".sdemb-error").textContent = await lib.reason(res);
      return;
    }
    showGroups((await res.json()).groups);
    dialog.close();
  }
  function formBody(form, g) {
    const field = (name) => form.querySelector("[name=" + name + "]").value;
    const members = Array.from(form.querySelectorAll(".sdemb-member")).map((row) => ({
      keyword: row.querySelector("[name=keyword]").value.trim(), weight: row.querySelector("[name=weight]").value,
      target: row.querySelector("[name=mtarget]").value })).filter((m) => m.keyword);
    return { id: g ? g.id : "", name: field("name").trim(), description: field("description"), target: field("target"),
      members };
  }
  NS.editGroup = (state, g) => {
    const dialog = document.createElement("dialog");
    dialog.className = "sdemb-dialog sdemb-group-dialog";
    dialog.innerHTML = dialogHtml(state, g);
    const form = dialog.querySelector("form");
    form.querySelector("[name=description]").value = g ? g.description : "";
    form.addEventListener("submit", (ev) => {
      ev.preventDefault(); // the dialog stays open until the host has saved (or says why not)
      send(state, "/groups", formBody(form, g), dialog);
    });
    dialog.addEventListener("click", (ev) => {
      const button = ev.target.closest("button");
      if (!button) return;
      if (button.classList.contains("sdemb-member-add")) {
        dialog.querySelector(".sdemb-members-edit").insertAdjacentHTML("beforeend", memberRow({}));
      } else if (button.classList.contains("sdemb-member-remove")) {
        button.closest(".sdemb-member").remove();
      } else if (button.classList.contains("sdemb-cancel")) {
        dialog.close();
      } else if (button.classList.contains("sdemb-delete") && window.confirm("Delete the group " + g.name + "?")) {
        send(state, "/groups/delete", { id: g.id }, dialog);
      }
    });
    dialog.addEventListener("close", () => dialog.remove());
    document.body.appendChild(dialog);
    dialog.showModal();
    return dialog;
  };
})();
