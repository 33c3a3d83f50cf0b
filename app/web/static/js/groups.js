// Player groups: the list, creating one, and a group's players and servers.
import { del, get, post } from "./api.js";
import { act, alertBox, button, cell, field, fill, h, table } from "./dom.js";

export function groupsPage(main) {
  const alert = alertBox();
  const list = h("div", {});
  const name = h("input", { name: "group-name", required: true, maxlength: 100 });
  const type = h("select", { name: "group-type" }, h("option", { value: "whitelist" }, "whitelist"),
    h("option", { value: "op" }, "op"));
  const level = h("input", { name: "op-level", type: "number", min: 1, max: 4, value: 4 });
  const create = h("button", { type: "submit", class: "primary" }, "Create group");
  const form = h("form", { class: "inline-form" }, field("Name", name), field("Type", type),
    field("Op level (op groups)", level), create);
  main.append(h("h1", {}, "Groups"), form, alert, list);
  const refresh = async () => {
    try {
      const page = await get("/api/v2/groups/?limit=100");
      fill(list, page.items.length ? table(["Group", "Type", "Players", "Servers", "Owner"],
        page.items.map((g) => h("tr", {}, cell("Group", h("a", { href: `#/groups/${g.id}` }, g.name)),
          cell("Type", g.group_type + (g.op_level ? ` (level ${g.op_level})` : "")),
          cell("Players", `${g.player_count}`), cell("Servers", `${g.server_count}`),
          cell("Owner", g.owner_username ?? "—"))), "Groups") : h("p", {}, "No groups yet."));
    } catch (error) {
      alert.show(error);
    }
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    act(create, alert, async () => {
      const body = { name: name.value.trim(), group_type: type.value };
      if (type.value === "op") body.op_level = Number(level.value);
      await post("/api/v2/groups/", body);
      name.value = "";
      await refresh();
    });
  });
  refresh();
  return null;
}

export function groupPage(main, id) {
  const alert = alertBox();
  const title = h("h1", {}, "Group");
  const body = h("div", {});
  const player = h("input", { name: "player", required: true, minlength: 3, maxlength: 16,
    pattern: "[A-Za-z0-9_]+" });
  const mode = h("select", { name: "mode" }, h("option", { value: "online" }, "online (Mojang UUID)"),
    h("option", { value: "offline" }, "offline UUID"));
  const add = h("button", { type: "submit", class: "primary" }, "Add player");
  const form = h("form", { class: "inline-form" }, field("Player name", player), field("Mode", mode), add);
  main.append(h("p", { class: "crumbs" }, h("a", { href: "#/groups" }, "Groups")), title, form, alert, body);
  const refresh = async () => {
    try {
      const group = await get(`/api/v2/groups/${id}`);
      title.textContent = group.name;
      fill(body, h("p", { class: "muted" }, `${group.group_type} group`
        + (group.op_level ? `, op level ${group.op_level}` : "")),
      h("h2", {}, "Players"),
      group.players.length ? table(["Player", "UUID", ""], group.players.map((p) => h("tr", {},
        cell("Player", p.name), cell("UUID", h("code", {}, p.uuid ?? p.id)),
        cell("", button("Remove", (e) => act(e.currentTarget, alert, async () => {
          await del(`/api/v2/groups/${id}/players/${p.id}`);
          await refresh();
        }))))), "Players") : h("p", {}, "No players yet."),
      h("h2", {}, "Servers"),
      group.servers.length ? h("ul", {}, group.servers.map((s) => h("li", {},
        h("a", { href: `#/servers/${s.id ?? s.server_id}/groups` }, s.name ?? s.id ?? s.server_id))))
        : h("p", {}, "Attached to no server. Attach it from a server's Groups tab."));
    } catch (error) {
      alert.show(error);
    }
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    act(add, alert, async () => {
      await post(`/api/v2/groups/${id}/players`, { name: player.value.trim(), mode: mode.value });
      player.value = "";
      await refresh();
    });
  });
  refresh();
  return null;
}
