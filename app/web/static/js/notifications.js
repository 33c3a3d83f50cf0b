// The user's notifications: newest first, live over the notifications socket, mark read.
import { get, post } from "./api.js";
import { act, alertBox, button, cell, fill, h, table, when } from "./dom.js";
import { watchSocket } from "./socket.js";

export function notificationsPage(main) {
  const alert = alertBox();
  const list = h("div", {}, h("p", { class: "muted" }, "Loading notifications…"));
  const readAll = button("Mark all read", (e) => act(e.currentTarget, alert, async () => {
    await post("/api/v2/notifications/read-all");
    await refresh();
  }));
  main.append(h("div", { class: "title-row" }, h("h1", {}, "Notifications"), readAll), alert, list);
  const refresh = async () => {
    try {
      const page = await get("/api/v2/notifications?limit=50");
      readAll.disabled = page.unread === 0;
      fill(list, page.items.length ? table(["When", "What", ""], page.items.map((n) => h("tr",
        { class: n.read_at ? "read" : "unread" },
        cell("When", when(n.created_at)),
        cell("What", h("strong", {}, n.title), h("br"), n.body,
          n.server_id ? [" ", h("a", { href: `#/servers/${n.server_id}` }, "server")] : null),
        cell("", n.read_at ? h("span", { class: "muted" }, "read")
          : button("Mark read", (e) => act(e.currentTarget, alert, async () => {
            await post(`/api/v2/notifications/${n.id}/read`);
            await refresh();
          }))))), "Notifications") : h("p", {}, "Nothing to report."));
    } catch (error) {
      alert.show(error);
    }
  };
  refresh();
  return watchSocket("/api/v2/ws/notifications", (message) => {
    if (message.type === "notification") refresh();
  });
}
