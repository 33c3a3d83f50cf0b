// One server: header with state and controls, then a tab (console, overview, files, ...).
import { get, post } from "./api.js";
import { act, alertBox, badge, button, fill, h } from "./dom.js";
import { consoleTab } from "./console.js";
import { overviewTab } from "./overview.js";
import { filesTab } from "./files.js";
import { backupsTab } from "./backups.js";
import { accessTab, activityTab } from "./activity.js";

const TABS = [
  ["console", "Console", consoleTab],
  ["overview", "Status", overviewTab],
  ["files", "Files", filesTab],
  ["backups", "Backups", backupsTab],
  ["groups", "Groups", accessTab],
  ["activity", "Activity", activityTab],
];

export function serverPage(main, id, tab) {
  const alert = alertBox();
  const state = h("span", { class: "state", "aria-live": "polite" });
  const controls = h("div", { class: "controls" });
  const title = h("h1", {}, "Server");
  const panel = h("section", { class: "panel" });
  const tabs = h("nav", { class: "tabs", "aria-label": "Server sections" },
    TABS.map(([key, label]) => h("a", { href: `#/servers/${id}/${key}`,
      "aria-current": key === tab ? "page" : null }, label)));
  main.append(h("p", { class: "crumbs" }, h("a", { href: "#/servers" }, "Servers")),
    h("div", { class: "title-row" }, title, state), controls, alert, tabs, panel);

  const ctx = { id, server: null, status: null, listeners: new Set(), alert };
  const power = (verb) => (event) => act(event.currentTarget, alert, async () => {
    await post(`/api/v2/servers/${id}/${verb}`);
    await poll();
  });
  const render = () => {
    const current = ctx.status?.state ?? ctx.server?.status ?? "unknown";
    fill(state, badge(current),
      ctx.status?.restart_required ? h("span", { class: "muted" }, " restart required") : null,
      ctx.status?.status_message ? h("span", { class: "muted" }, ` ${ctx.status.status_message}`) : null);
    const up = ["running", "starting"].includes(current);
    fill(controls, 
      button("Start", power("start"), "primary"),
      button("Stop", power("stop")),
      button("Restart", power("restart")),
      button("Kill", power("kill"), "danger"));
    const [start, stop, restart, kill] = controls.children;
    start.disabled = up || current === "stopping";
    stop.disabled = !up;
    restart.disabled = !up;
    kill.disabled = current === "stopped";
  };
  const poll = async () => {
    try {
      ctx.status = await get(`/api/v2/servers/${id}/status`);
      render();
      for (const listener of ctx.listeners) listener(ctx.status);
    } catch (error) {
      alert.show(error);
    }
  };
  let cleanup = null;
  let closed = false;
  (async () => {
    try {
      ctx.server = await get(`/api/v2/servers/${id}`);
    } catch (error) {
      alert.show(error);
      return;
    }
    if (closed) return;
    title.textContent = ctx.server.name;
    document.title = `${ctx.server.name} · mcdash`;
    ctx.reload = async () => {
      ctx.server = await get(`/api/v2/servers/${id}`);
      return ctx.server;
    };
    render();
    const entry = TABS.find(([key]) => key === tab) ?? TABS[0];
    cleanup = entry[2](panel, ctx);
    poll();
  })();
  const timer = setInterval(poll, 2000);
  return () => {
    closed = true;
    clearInterval(timer);
    if (typeof cleanup === "function") cleanup();
  };
}
