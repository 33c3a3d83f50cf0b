// The server list (state, players, version, node, backups; start and stop) and the create form.
import { get, post } from "./api.js";
import { act, alertBox, badge, button, cell, field, fill, h, table, when } from "./dom.js";

const TYPES = ["vanilla", "paper", "fabric", "forge", "neoforge", "custom"];
const RUNNING = new Set(["running", "starting"]);

export function serverList(main, rest) {
  if (rest[0] === "new") return createForm(main);
  const alert = alertBox();
  const body = h("div", {}, h("p", { class: "muted" }, "Loading servers…"));
  main.append(
    h("div", { class: "title-row" }, h("h1", {}, "Servers"),
      h("a", { class: "button primary", href: "#/servers/new" }, "New server")),
    alert, body);
  let timer = null;
  const refresh = async () => {
    try {
      const page = await get("/api/v2/servers/?limit=100");
      alert.clear();
      fill(body, page.items.length ? listTable(page.items, alert, refresh)
        : h("p", {}, "No servers yet. ", h("a", { href: "#/servers/new" }, "Create one.")));
    } catch (error) {
      alert.show(error);
    }
  };
  refresh();
  timer = setInterval(refresh, 5000);
  return () => clearInterval(timer);
}

function listTable(items, alert, refresh) {
  const rows = items.map((server) => {
    const running = RUNNING.has(server.status);
    const control = running
      ? button("Stop", (e) => act(e.currentTarget, alert, async () => {
        await post(`/api/v2/servers/${server.id}/stop`);
        await refresh();
      }))
      : button("Start", (e) => act(e.currentTarget, alert, async () => {
        await post(`/api/v2/servers/${server.id}/start`);
        await refresh();
      }), "primary");
    control.setAttribute("aria-label", `${running ? "Stop" : "Start"} ${server.name}`);
    return h("tr", {},
      cell("Name", h("a", { href: `#/servers/${server.id}` }, server.name)),
      cell("State", badge(server.status), server.restart_required ? h("small", {}, " restart needed") : null),
      cell("Players", `${server.player_count} / ${server.max_players}`),
      cell("Version", `${server.server_type} ${server.version}`),
      cell("Node", server.node),
      cell("Backups", `${server.backup_count ?? 0}`, server.latest_backup
        ? h("small", { class: "muted" }, ` latest ${when(server.latest_backup)}`) : null),
      cell("Actions", control));
  });
  return table(["Name", "State", "Players", "Version", "Node", "Backups", ""], rows, "Your servers");
}

function createForm(main) {
  const alert = alertBox();
  const name = h("input", { name: "name", required: true, maxlength: 100, autocomplete: "off" });
  const type = h("select", { name: "server_type" }, TYPES.map((t) => h("option", { value: t }, t)));
  const version = h("input", { name: "version", required: true, maxlength: 20, value: "1.20.4" });
  const memory = h("input", { name: "memory_mb", type: "number", min: 512, max: 32768, step: 256,
    value: 1024, required: true });
  const players = h("input", { name: "max_players", type: "number", min: 1, max: 10000, value: 20 });
  const eula = h("input", { name: "eula", type: "checkbox" });
  const submit = h("button", { type: "submit", class: "primary" }, "Create server");
  const form = h("form", { class: "stack narrow" },
    field("Name", name),
    field("Type", type, "custom: you upload the server jar on the next page."),
    field("Minecraft version", version),
    field("Memory (MiB)", memory),
    field("Max players", players),
    field("I accept the Minecraft EULA (https://aka.ms/MinecraftEULA)", eula),
    alert, submit);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    act(submit, alert, async () => {
      const created = await post("/api/v2/servers/", {
        name: name.value.trim(),
        server_type: type.value,
        version: version.value.trim(),
        memory_mb: Number(memory.value),
        max_players: Number(players.value),
        eula_accepted: eula.checked,
      });
      location.hash = `#/servers/${created.id}/overview`;
    });
  });
  main.append(h("h1", {}, "New server"), form);
  name.focus();
  return null;
}
