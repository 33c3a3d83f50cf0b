// Backups with live progress (create, download, restore after a confirmation) and schedules.
import { del, get, patch, post, request } from "./api.js";
import { act, alertBox, badge, button, bytes, cell, field, fill, h, table, toast, when } from "./dom.js";
import { watchSocket } from "./socket.js";

const BUSY = new Set(["requested", "pending", "running", "in_progress"]);

export function backupsTab(panel, ctx) {
  const alert = alertBox();
  const list = h("div", {}, h("p", { class: "muted" }, "Loading backups…"));
  const progress = new Map();
  const name = h("input", { name: "backup-name", maxlength: 200, placeholder: "before the update" });
  const compression = h("select", { name: "compression" },
    h("option", { value: "gzip" }, "gzip"), h("option", { value: "zstd" }, "zstd"));
  const create = h("button", { type: "submit", class: "primary" }, "Take a backup");
  const form = h("form", { class: "inline-form" }, field("Name (optional)", name),
    field("Compression", compression), create);
  const schedules = h("section", {});
  panel.append(h("h2", {}, "Backups"), form, alert, list, schedules);

  let items = [];
  const render = () => {
    if (!items.length) {
      fill(list, h("p", {}, "No backups yet."));
      return;
    }
    fill(list, table(["Name", "Status", "Size", "Taken", ""], items.map((b) => {
      const live = progress.get(b.id);
      const confirmBox = h("div", { class: "controls" });
      const ask = button("Restore", () => {
        const yes = button("Yes, restore", (e) => act(e.currentTarget, alert, async () => {
          await post(`/api/v2/backups/${b.id}/restore`, {});
          toast(`Restoring ${b.name}; the server restarts when it is done.`);
          fill(confirmBox);
          await refresh();
        }), "danger");
        fill(confirmBox, h("span", { role: "alert" },
          `Replace the server's files with "${b.name}"? A safety backup is taken first.`),
        yes, button("Cancel", () => fill(confirmBox)));
        yes.focus();
      });
      return h("tr", { "data-backup": b.id },
        cell("Name", b.name),
        cell("Status", badge(b.status), live && BUSY.has(b.status)
          ? h("small", {}, ` ${live.phase ?? ""} ${bytes(live.bytes)}`) : null,
        b.error ? h("small", { class: "error-text" }, ` ${b.error}`) : null,
        b.restore_status ? h("small", {}, ` restore: ${b.restore_status}`) : null),
        cell("Size", bytes(b.size_bytes)),
        cell("Taken", when(b.finished_at ?? b.created_at)),
        cell("", b.status === "completed" ? [button("Download", (e) => act(e.currentTarget, alert,
          () => download(b))), ask, confirmBox] : null));
    }), "Backups"));
  };
  const refresh = async () => {
    try {
      items = (await get(`/api/v2/servers/${ctx.id}/backups?limit=50`)).items;
      render();
    } catch (error) {
      alert.show(error);
    }
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    act(create, alert, async () => {
      const body = { compression: compression.value };
      if (name.value.trim()) body.name = name.value.trim();
      await post(`/api/v2/servers/${ctx.id}/backups`, body);
      name.value = "";
      await refresh();
    });
  });
  const stop = watchSocket("/api/v2/ws/notifications", (message) => {
    if (String(message.type).endsWith(".progress") && message.server_id === ctx.id) {
      progress.set(message.backup_id, message);
      render();
    } else if (message.type !== "progress") refresh();
  });
  refresh();
  const timer = setInterval(() => {
    if (items.some((b) => BUSY.has(b.status) || BUSY.has(b.restore_status))) refresh();
  }, 1500);
  scheduleSection(schedules, ctx);
  return () => {
    clearInterval(timer);
    stop();
  };
}

async function download(backup) {
  const res = await request("GET", `/api/v2/backups/${backup.id}/download`, { raw: true });
  const url = URL.createObjectURL(await res.blob());
  const link = h("a", { href: url, download: `${backup.name}.tar.${backup.compression === "zstd" ? "zst" : "gz"}` });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

function scheduleSection(section, ctx) {
  const alert = alertBox();
  const list = h("div", {});
  const cron = h("input", { name: "cron", required: true, maxlength: 100, value: "0 3 * * *" });
  const zone = h("input", { name: "timezone", maxlength: 64, value: "UTC" });
  const keep = h("input", { name: "keep_last", type: "number", min: 1, max: 1000, value: 7 });
  const add = h("button", { type: "submit" }, "Add schedule");
  const form = h("form", { class: "inline-form" }, field("Cron (min hour day month weekday)", cron),
    field("Time zone", zone), field("Keep last", keep), add);
  const refresh = async () => {
    try {
      const found = await get(`/api/v2/servers/${ctx.id}/schedules`);
      const rows = Array.isArray(found) ? found : found.items ?? [];
      fill(list, rows.length ? table(["Cron", "Action", "Next run", "Active", ""], rows.map((s) =>
        h("tr", {}, cell("Cron", `${s.cron_expression} (${s.timezone})`), cell("Action", s.action ?? "backup"),
          cell("Next run", when(s.next_run)), cell("Active", s.is_active ? "yes" : "no"),
          cell("", button(s.is_active ? "Pause" : "Resume", (e) => act(e.currentTarget, alert, async () => {
            await patch(`/api/v2/schedules/${s.id}`, { is_active: !s.is_active });
            await refresh();
          })), button("Delete", (e) => act(e.currentTarget, alert, async () => {
            await del(`/api/v2/schedules/${s.id}`);
            await refresh();
          }), "danger")))), "Schedules") : h("p", {}, "No schedules."));
    } catch (error) {
      alert.show(error);
    }
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    act(add, alert, async () => {
      await post(`/api/v2/servers/${ctx.id}/schedules`, { cron_expression: cron.value,
        timezone: zone.value || "UTC", keep_last: Number(keep.value) || null });
      await refresh();
    });
  });
  section.append(h("h2", {}, "Schedules"), form, alert, list);
  refresh();
}
