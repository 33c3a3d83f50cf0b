// Entry point: hash routes to pages; each page may return a cleanup (sockets, timers).
import { onExpired, signOut, signedIn, user } from "./api.js";
import { authPage } from "./auth.js";
import { fill, h } from "./dom.js";
import { serverList } from "./servers.js";
import { serverPage } from "./server.js";
import { groupPage, groupsPage } from "./groups.js";
import { adminPage } from "./admin.js";
import { notificationsPage } from "./notifications.js";

const PUBLIC = new Set(["signin", "register", "waiting"]);
let cleanup = null;
let notice = "";

onExpired((message) => {
  notice = message;
  location.hash = "#/signin";
});

function nav() {
  const el = document.getElementById("nav");
  if (!signedIn()) {
    fill(el);
    return;
  }
  const current = location.hash.split("/")[1] || "servers";
  const link = (href, label, key) =>
    h("a", { href, "aria-current": current === key ? "page" : null }, label);
  const me = user();
  fill(el, 
    link("#/servers", "Servers", "servers"),
    link("#/groups", "Groups", "groups"),
    link("#/notifications", "Notifications", "notifications"),
    me && ["admin", "operator"].includes(me.role) ? link("#/admin/users", "Admin", "admin") : null,
    h("span", { class: "who" }, me ? me.username : ""),
    h("button", { type: "button", class: "link", onclick: async () => {
      await signOut().catch(() => {});
      location.hash = "#/signin";
    } }, "Sign out"),
  );
}

async function route() {
  if (cleanup) {
    cleanup();
    cleanup = null;
  }
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const [page = "servers", ...rest] = parts[0] ? parts : ["servers"];
  const main = document.getElementById("main");
  if (!signedIn() && !PUBLIC.has(page)) {
    location.replace("#/signin");
    return;
  }
  nav();
  fill(main);
  let done;
  if (PUBLIC.has(page)) {
    done = authPage(main, page, notice);
    notice = "";
  } else if (page === "servers" && rest[0] && rest[0] !== "new") done = serverPage(main, rest[0], rest[1] || "console");
  else if (page === "servers") done = serverList(main, rest);
  else if (page === "groups" && rest[0]) done = groupPage(main, rest[0]);
  else if (page === "groups") done = groupsPage(main);
  else if (page === "notifications") done = notificationsPage(main);
  else if (page === "admin") done = adminPage(main, rest[0] || "users");
  else main.append(h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/servers" }, "Back to servers")));
  cleanup = typeof done === "function" ? done : null;
  const heading = main.querySelector("h1");
  if (heading) document.title = `${heading.textContent} · mcdash`;
  main.focus({ preventScroll: true });
}

window.addEventListener("hashchange", route);
route();
