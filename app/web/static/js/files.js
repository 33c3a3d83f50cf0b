// File browser and editor: saves with If-Match; a 412 shows what changed and lets the user choose.
import { ApiError, filePath, get, post, request } from "./api.js";
import { act, alertBox, button, bytes, cell, fill, h, table, toast, when } from "./dom.js";
import { lineDiff, renderOps, renderUnified } from "./diff.js";

export function filesTab(panel, ctx) {
  const base = `/api/v2/servers/${ctx.id}/files`;
  const alert = alertBox();
  const crumbs = h("nav", { class: "crumbs", "aria-label": "Folder" });
  const listing = h("div", {});
  const editor = h("div", {});
  panel.append(crumbs, alert, listing, editor);
  let dir = "";

  const open = async (path) => {
    dir = path;
    alert.clear();
    const parts = path.split("/").filter(Boolean);
    fill(crumbs, button("server", () => open("")), parts.map((part, i) => [" / ",
      button(part, () => open(parts.slice(0, i + 1).join("/")))]));
    try {
      const page = await get(`${base}?path=${encodeURIComponent(path)}&limit=500`);
      fill(listing, table(["Name", "Size", "Modified"], page.items.map((entry) => h("tr", {},
        cell("Name", entry.type === "directory"
          ? button(`${entry.name}/`, () => open(entry.path), "link")
          : entry.is_text ? button(entry.name, () => edit(entry.path), "link")
            : button(entry.name, (e) => act(e.currentTarget, alert, () => download(entry)), "link")),
        cell("Size", entry.type === "directory" ? "—" : bytes(entry.size)),
        cell("Modified", when(entry.modified_at)))), "Files"));
    } catch (error) {
      alert.show(error);
    }
  };

  const refreshListing = () => {
    open(dir);
  };

  const download = async (entry) => {
    const res = await request("GET", `${base}/${filePath(entry.path)}/download`, { raw: true });
    const url = URL.createObjectURL(await res.blob());
    const link = h("a", { href: url, download: entry.name });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  };

  const edit = async (path) => {
    const errors = alertBox();
    let file;
    try {
      file = await get(`${base}/${filePath(path)}`);
    } catch (error) {
      alert.show(error);
      return;
    }
    let etag = file.etag;
    const text = h("textarea", { id: "editor-text", class: "editor", spellcheck: "false", rows: 20 });
    text.value = file.content;
    const conflict = h("div", {});
    const history = h("div", {});
    const save = h("button", { type: "button", class: "primary" }, "Save");
    const write = async (content, ifMatch) => {
      const res = await request("PUT", `${base}/${filePath(path)}`, { json: { content },
        headers: { "If-Match": ifMatch } });
      etag = res.etag;
      fill(conflict);
      refreshListing();
      toast(res.restart_required ? `Saved ${path}; restart to apply.` : `Saved ${path}.`);
      for (const warning of res.warnings ?? []) toast(warning, "warn");
    };
    save.addEventListener("click", () => act(save, errors, async () => {
      try {
        await write(text.value, etag);
      } catch (error) {
        if (!(error instanceof ApiError) || error.status !== 412) throw error;
        await showConflict();
      }
    }));
    const showConflict = async () => {
      const theirs = await get(`${base}/${filePath(path)}`);
      const mine = text.value;
      const keep = button("Keep my version", (e) => act(e.currentTarget, errors,
        () => write(mine, theirs.etag)), "primary");
      const take = button("Use their version", () => {
        text.value = theirs.content;
        etag = theirs.etag;
        fill(conflict);
        toast("Loaded the version on disk.");
      });
      fill(conflict, h("section", { class: "conflict", role: "alert" },
        h("h3", {}, `${path} changed since you opened it`),
        h("p", {}, "Lines marked − are on disk now; lines marked + are yours."),
        renderOps(lineDiff(theirs.content, mine), "Their version against yours"),
        h("div", { class: "controls" }, keep, take)));
      keep.focus();
    };
    const showHistory = async () => {
      const page = await get(`${base}/${filePath(path)}/history?limit=50`);
      const out = h("div", {});
      fill(history, h("h3", {}, "History"), table(["Version", "Change", "When", ""],
        page.items.map((v) => h("tr", {}, cell("Version", `#${v.version}`),
          cell("Change", `${v.action}${v.outcome === "rejected" ? " (rejected)" : ""}`),
          cell("When", when(v.created_at)),
          cell("", button("Diff", (e) => act(e.currentTarget, errors, async () => {
            const d = await get(`${base}/${filePath(path)}/history/${v.version}/diff`);
            fill(out, h("h4", {}, `Version ${v.version} against the file now`),
              renderUnified(d.diff, `Diff of version ${v.version}`));
          })), v.content_kept ? button("Restore", (e) => confirmRestore(e.currentTarget, v, out)) : null))),
        "File history"), out);
    };
    const confirmRestore = (trigger, v, out) => {
      const yes = button(`Yes, restore version ${v.version}`, (e) => act(e.currentTarget, errors, async () => {
        await post(`${base}/${filePath(path)}/history/${v.version}/restore`);
        const fresh = await get(`${base}/${filePath(path)}`);
        text.value = fresh.content;
        etag = fresh.etag;
        toast(`Restored version ${v.version}.`);
        await showHistory();
      }), "danger");
      fill(out, h("p", { role: "alert" }, `Replace ${path} with version ${v.version}?`),
        h("div", { class: "controls" }, yes, button("Cancel", () => fill(out))));
      yes.focus();
      void trigger;
    };
    fill(editor, h("section", { class: "card" },
      h("div", { class: "title-row" }, h("h2", {}, path),
        button("Close", () => fill(editor))),
      h("label", { for: "editor-text" }, `Contents of ${path}`), text, errors,
      h("div", { class: "controls" }, save,
        button("History", (e) => act(e.currentTarget, errors, showHistory))),
      conflict, history));
    text.focus();
  };

  open(dir);
  return null;
}
