// Admin pages: users (approval, role, deactivation), nodes (cordon) and the system sync.
import { get, patch, post } from "./api.js";
import { act, alertBox, button, bytes, cell, fill, h, table, when } from "./dom.js";

const PAGES = [["users", "Users"], ["nodes", "Nodes"], ["sync", "System sync"]];

export function adminPage(main, page) {
  const alert = alertBox();
  const body = h("div", {});
  main.append(h("h1", {}, "Admin"), h("nav", { class: "tabs", "aria-label": "Admin sections" },
    PAGES.map(([key, label]) => h("a", { href: `#/admin/${key}`, "aria-current": key === page ? "page" : null }, label))),
  alert, body);
  const render = { users, nodes, sync }[page] ?? users;
  render(body, alert);
  return null;
}

async function users(body, alert) {
  const refresh = async () => {
    try {
      const page = await get("/api/v2/users/?limit=100");
      fill(body, table(["User", "Role", "State", "Last sign-in", ""], page.items.map((u) => {
        const role = h("select", { "aria-label": `Role of ${u.username}` },
          ["user", "operator", "admin"].map((r) => h("option", { value: r, selected: r === u.role }, r)));
        role.addEventListener("change", () => act(role, alert, async () => {
          await patch(`/api/v2/users/${u.id}/role`, { role: role.value });
          await refresh();
        }));
        const verb = (path, label, cls = "") => button(label, (e) => act(e.currentTarget, alert, async () => {
          await patch(`/api/v2/users/${u.id}/${path}`);
          await refresh();
        }), cls);
        return h("tr", {}, cell("User", h("strong", {}, u.username), h("br"), h("small", {}, u.email)),
          cell("Role", role),
          cell("State", !u.is_approved ? "waiting for approval" : u.is_active ? "active" : "deactivated"),
          cell("Last sign-in", when(u.last_login_at)),
          cell("", !u.is_approved ? verb("approve", "Approve", "primary") : null,
            u.is_active ? verb("deactivate", "Deactivate", "danger") : verb("reactivate", "Reactivate")));
      }), "Users"));
    } catch (error) {
      alert.show(error);
    }
  };
  await refresh();
}

async function nodes(body, alert) {
  const refresh = async () => {
    try {
      const page = await get("/api/v2/nodes/");
      fill(body, table(["Node", "State", "Servers", "Memory", "Disk free", "Java", ""],
        page.items.map((n) => h("tr", {}, cell("Node", h("strong", {}, n.name), h("br"), h("small", {}, n.host ?? "")),
          cell("State", `${n.online ? "online" : "offline"}${n.cordoned ? ", cordoned" : ""}`),
          cell("Servers", `${n.servers_running ?? "?"} running / ${n.server_count}`),
          cell("Memory", `${n.memory_allocated_mb} MiB allocated of ${bytes(n.memory_total)}`),
          cell("Disk free", bytes(n.disk_free)),
          cell("Java", (n.java ?? []).map((j) => j.version ?? j.major ?? "").filter(Boolean).join(", ") || "—"),
          cell("", button(n.cordoned ? "Uncordon" : "Cordon", (e) => act(e.currentTarget, alert, async () => {
            await patch(`/api/v2/nodes/${encodeURIComponent(n.name)}`, { cordoned: !n.cordoned });
            await refresh();
          }))))), "Nodes"));
    } catch (error) {
      alert.show(error);
    }
  };
  await refresh();
}

function syncReport(report) {
  const servers = report.servers ?? [];
  return h("div", {},
    h("p", { class: report.consistent ? "ok-text" : "error-text" },
      report.consistent ? "Database and nodes agree." : "Database and nodes disagree."),
    servers.length ? table(["Server", "Node", "Database", "Node sees", "Problem"], servers.map((s) => h("tr", {},
      cell("Server", s.name), cell("Node", s.node), cell("Database", s.db_state),
      cell("Node sees", s.observed ? (s.observed.state ?? "running") : "nothing"),
      cell("Problem", s.problem ?? "—"))), "Servers") : null,
    (report.orphans ?? []).length ? h("p", {}, `${report.orphans.length} process(es) no server owns.`) : null);
}

function sync(body, alert) {
  const out = h("div", {});
  const check = button("Check", (e) => act(e.currentTarget, alert, async () => {
    fill(out, syncReport(await get("/api/v2/admin/system/sync")));
  }));
  const repair = button("Repair", (e) => act(e.currentTarget, alert, async () => {
    const done = await post("/api/v2/admin/system/sync");
    fill(out, h("h2", {}, "Repairs"),
      (done.repairs ?? []).length ? h("ul", {}, done.repairs.map((r) =>
        h("li", {}, `${r.kind} ${r.target}: ${r.action}${r.detail ? ` (${r.detail})` : ""}`)))
        : h("p", {}, "Nothing needed repair."),
      done.after ? syncReport(done.after) : null);
  }), "primary");
  fill(body, h("p", {}, "Compare the database with what the nodes run, and repair what differs."),
    h("div", { class: "controls" }, check, repair), out);
  check.click();
}
