// A server's attached groups (attach, detach, effective lists) and its activity log.
import { del, get, post } from "./api.js";
import { act, alertBox, button, cell, field, fill, h, table, when } from "./dom.js";

export function accessTab(panel, ctx) {
  const alert = alertBox();
  const body = h("div", {});
  const choose = h("select", { name: "group" });
  const attach = h("button", { type: "submit" }, "Attach group");
  const form = h("form", { class: "inline-form" }, field("Group", choose), attach);
  panel.append(h("h2", {}, "Groups"), form, alert, body);
  const refresh = async () => {
    try {
      const [access, groups] = await Promise.all([get(`/api/v2/servers/${ctx.id}/access`),
        get("/api/v2/groups/?limit=100")]);
      const attached = new Set(access.groups.map((g) => g.group_id));
      fill(choose, ...groups.items.filter((g) => !attached.has(g.id))
        .map((g) => h("option", { value: g.id }, `${g.name} (${g.group_type})`)));
      attach.disabled = !choose.options.length;
      if (attach.disabled) choose.append(h("option", { value: "" }, "no other group to attach"));
      fill(body, 
        access.groups.length ? table(["Group", "Type", ""], access.groups.map((g) => h("tr", {},
          cell("Group", h("a", { href: `#/groups/${g.group_id}` }, g.name)), cell("Type", g.group_type),
          cell("", button("Detach", (e) => act(e.currentTarget, alert, async () => {
            await del(`/api/v2/groups/${g.group_id}/servers/${ctx.id}`);
            await refresh();
          }))))), "Attached groups") : h("p", {}, "No groups attached."),
        h("h3", {}, "Effective lists"),
        h("p", {}, `Ops: ${access.ops.map((o) => o.name).join(", ") || "none"}`),
        h("p", {}, `Whitelist: ${access.whitelist.map((w) => w.name).join(", ") || "none"}`),
        access.last_sync ? h("p", { class: "muted" }, `Last sync ${when(access.last_sync.at)}`) : null);
    } catch (error) {
      alert.show(error);
    }
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    act(attach, alert, async () => {
      await post(`/api/v2/groups/${choose.value}/servers/${ctx.id}`);
      await refresh();
    });
  });
  refresh();
  return null;
}

export function activityTab(panel, ctx) {
  const alert = alertBox();
  const rows = h("tbody", {});
  const more = button("Older", () => load());
  let before = null;
  const load = () => act(more, alert, async () => {
    const query = before ? `&before=${before}` : "";
    const page = await get(`/api/v2/servers/${ctx.id}/activity?limit=50${query}`);
    rows.append(...page.items.map((entry) => h("tr", {}, cell("When", when(entry.occurred_at)),
      cell("Who", entry.actor_username ?? "system"), cell("What", entry.summary ?? entry.action))));
    before = page.next_before;
    more.hidden = before === null;
  });
  panel.append(h("h2", {}, "Activity"), alert,
    h("table", { class: "grid" }, h("thead", {}, h("tr", {}, ["When", "Who", "What"].map((t) =>
      h("th", { scope: "col" }, t)))), rows), more);
  load();
  return null;
}
