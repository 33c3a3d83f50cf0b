// Status (players, CPU, memory, a chart from the metrics history), the jar and the settings.
import { get, put, request } from "./api.js";
import { act, alertBox, bytes, duration, field, fill, h, svg, toast } from "./dom.js";

function chart(label, times, values, format) {
  const points = values.map((v, i) => [times[i], v]).filter(([, v]) => v !== null && v !== undefined);
  const figure = h("figure", { class: "chart" }, h("figcaption", {}, label));
  if (points.length < 2) {
    figure.append(h("p", { class: "muted" }, "Not enough samples yet."));
    return figure;
  }
  const [t0, t1] = [points[0][0], points[points.length - 1][0]];
  const max = Math.max(...points.map(([, v]) => v), 1e-9);
  const line = points.map(([t, v]) => `${((t - t0) / (t1 - t0 || 1)) * 300},${60 - (v / max) * 56}`);
  const graphic = svg("svg", { viewBox: "0 0 300 60", preserveAspectRatio: "none", role: "img",
    "aria-label": `${label}: latest ${format(points[points.length - 1][1])}, peak ${format(max)}` });
  graphic.append(svg("polyline", { points: line.join(" "), class: "series", fill: "none" }));
  figure.append(graphic, h("p", { class: "muted" },
    `latest ${format(points[points.length - 1][1])} · peak ${format(max)}`));
  return figure;
}

export function overviewTab(panel, ctx) {
  const live = h("dl", { class: "facts" });
  const charts = h("div", { class: "charts" });
  const renderLive = (status) => {
    const sample = status.live;
    const facts = [
      ["State", status.state],
      ["Players", sample ? `${sample.players_online} / ${sample.players_max ?? ctx.server.max_players}` : "—"],
      ["Online", sample?.players?.length ? sample.players.join(", ") : "nobody"],
      ["CPU", sample?.cpu_percent != null ? `${sample.cpu_percent.toFixed(1)} %` : "—"],
      ["Memory", bytes(sample?.rss_bytes)],
      ["Uptime", duration(sample?.uptime_seconds)],
      ["Address", `port ${ctx.server.port} on node ${ctx.server.node}`],
      ["Version", `${ctx.server.server_type} ${ctx.server.version}`],
    ];
    fill(live, ...facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
  };
  ctx.listeners.add(renderLive);
  if (ctx.status) renderLive(ctx.status);
  const loadCharts = async () => {
    try {
      const from = new Date(Date.now() - 3600 * 1000).toISOString();
      const m = await get(`/api/v2/servers/${ctx.id}/metrics?from=${encodeURIComponent(from)}`);
      fill(charts, 
        chart("CPU (%)", m.times, m.series.cpu_percent ?? [], (v) => `${v.toFixed(1)} %`),
        chart("Memory", m.times, m.series.rss_bytes ?? [], bytes),
        chart("Players", m.times, m.series.players_online ?? [], (v) => `${Math.round(v)}`));
    } catch (error) {
      fill(charts, h("p", { class: "muted" }, `No metrics history: ${error.message}`));
    }
  };
  loadCharts();
  const timer = setInterval(loadCharts, 30000);
  panel.append(h("h2", {}, "Status"), live, h("h2", {}, "Last hour"), charts,
    setupSection(ctx), settingsForm(ctx));
  return () => {
    clearInterval(timer);
    ctx.listeners.delete(renderLive);
  };
}

function setupSection(ctx) {
  const alert = alertBox();
  const section = h("section", {}, h("h2", {}, "Set-up"));
  const body = h("div", { class: "stack narrow" });
  const render = () => {
    const server = ctx.server;
    fill(body);
    if (server.server_type === "custom") {
      const file = h("input", { type: "file", name: "jar", accept: ".jar" });
      const upload = h("button", { type: "button" }, "Upload jar");
      upload.addEventListener("click", () => act(upload, alert, async () => {
        if (!file.files.length) throw new Error("Choose a .jar file first.");
        const form = new FormData();
        form.append("file", file.files[0], file.files[0].name);
        await request("PUT", `/api/v2/servers/${ctx.id}/jar`, { body: form });
        await ctx.reload();
        toast("Jar uploaded.");
        render();
      }));
      body.append(h("p", {}, server.jar_sha256
        ? `Jar installed (SHA-256 ${server.jar_sha256.slice(0, 16)}…).` : "No jar uploaded yet."),
      field("Server jar", file), upload);
    }
    if (server.eula_accepted) body.append(h("p", {}, "The Minecraft EULA is accepted."));
    else {
      const accept = h("button", { type: "button", class: "primary" }, "Accept the EULA");
      accept.addEventListener("click", () => act(accept, alert, async () => {
        await put(`/api/v2/servers/${ctx.id}`, { eula_accepted: true });
        await ctx.reload();
        render();
      }));
      body.append(h("p", {}, "The server cannot start until you accept the ",
        h("a", { href: "https://aka.ms/MinecraftEULA", rel: "noreferrer", target: "_blank" },
          "Minecraft EULA"), "."), accept);
    }
    body.append(alert);
  };
  render();
  section.append(body);
  return section;
}

function settingsForm(ctx) {
  const s = ctx.server;
  const alert = alertBox();
  const memory = h("input", { type: "number", min: 512, max: 32768, step: 256, value: s.memory_mb });
  const players = h("input", { type: "number", min: 1, max: 10000, value: s.max_players });
  const motd = h("input", { maxlength: 150, value: s.motd });
  const whitelist = h("input", { type: "checkbox" });
  whitelist.checked = s.whitelist;
  const save = h("button", { type: "submit" }, "Save settings");
  const form = h("form", { class: "stack narrow" }, field("Memory (MiB)", memory),
    field("Max players", players), field("Message of the day", motd),
    field("Whitelist on", whitelist), alert, save);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    act(save, alert, async () => {
      const saved = await put(`/api/v2/servers/${ctx.id}`, { memory_mb: Number(memory.value),
        max_players: Number(players.value), motd: motd.value, whitelist: whitelist.checked });
      ctx.server = saved;
      toast(saved.restart_required ? "Saved; restart the server to apply." : "Saved.");
    });
  });
  return h("section", {}, h("h2", {}, "Settings"), form);
}
