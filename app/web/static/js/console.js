// The live console: backlog then live lines over a ticketed WebSocket, reconnecting with
// backoff; lines are deduplicated by their stream id and the DOM keeps the last MAX_LINES.
import { ApiError, post, socketUrl, ticket } from "./api.js";
import { alertBox, h } from "./dom.js";

export const MAX_LINES = 1000;
const HISTORY = 100;
const FINAL = new Map([[4403, "You may not watch this console."], [4404, "No such server."]]);

function streamId(id) {
  const [ms, seq] = String(id).split("-").map(Number);
  return [ms || 0, seq || 0];
}

function after(a, b) {
  return a[0] > b[0] || (a[0] === b[0] && a[1] > b[1]);
}

function level(line) {
  const match = /\/(INFO|WARN|ERROR|FATAL|DEBUG)\]/.exec(line) || /\[(WARN|ERROR|FATAL)\]/.exec(line);
  return match ? match[1].toLowerCase() : "plain";
}

export function consoleTab(panel, ctx) {
  const output = h("div", { class: "console", role: "log", "aria-label": "Console output",
    "aria-live": "off", tabindex: 0 });
  const status = h("p", { class: "muted console-state", "aria-live": "polite" }, "Connecting…");
  const alert = alertBox();
  const input = h("input", { id: "console-command", name: "command", autocomplete: "off",
    maxlength: 1000, spellcheck: "false", placeholder: "list" });
  const form = h("form", { class: "console-input" },
    h("label", { for: "console-command" }, "Command"), input,
    h("button", { type: "submit", class: "primary" }, "Send"));
  panel.append(status, output, alert, form);

  let socket = null;
  let last = [0, 0];
  let attempt = 0;
  let retryTimer = null;
  let closed = false;
  let pending = [];
  let frame = 0;
  const history = [];
  let cursor = 0;

  const flush = () => {
    frame = 0;
    const stick = output.scrollHeight - output.scrollTop - output.clientHeight < 40;
    const fragment = document.createDocumentFragment();
    for (const item of pending.slice(-MAX_LINES)) {
      fragment.append(h("div", { class: `line ${item.cls}` }, item.text));
    }
    pending = [];
    output.append(fragment);
    let extra = output.childElementCount - MAX_LINES;
    while (extra > 0) {
      output.firstElementChild.remove();
      extra -= 1;
    }
    if (stick) output.scrollTop = output.scrollHeight;
  };
  const show = (text, cls) => {
    pending.push({ text, cls });
    frame ||= requestAnimationFrame(flush);
  };
  const addLines = (lines) => {
    for (const line of lines) {
      const id = streamId(line.id);
      if (!after(id, last)) continue;
      last = id;
      show(line.line, level(line.line));
    }
  };
  const reply = (message) => {
    const text = message.status === 429
      ? `Too many commands: try again in ${message.retry_after ?? "a few"} s.`
      : (typeof message.detail === "string" ? message.detail : `Refused (${message.status}).`);
    show(text, "refused");
    alert.show(text);
  };

  const schedule = () => {
    if (closed) return;
    const delay = Math.min(30000, 500 * 2 ** attempt) * (0.8 + Math.random() * 0.4);
    attempt += 1;
    status.textContent = `Disconnected; reconnecting in ${Math.round(delay / 1000)} s…`;
    retryTimer = setTimeout(connect, delay);
  };
  async function connect() {
    if (closed) return;
    let value;
    try {
      value = await ticket();
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return;
      status.textContent = error.message;
      schedule();
      return;
    }
    if (closed) return;
    socket = new WebSocket(socketUrl(`/api/v2/ws/servers/${ctx.id}/console`, value));
    socket.addEventListener("message", (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "backlog" || message.type === "lines") {
        attempt = 0;
        status.textContent = "Live";
        addLines(message.lines);
      } else if (message.type === "error") reply(message);
      else if (message.type === "sent") alert.clear();
    });
    socket.addEventListener("open", () => {
      status.textContent = "Live";
    });
    socket.addEventListener("close", (event) => {
      socket = null;
      if (FINAL.has(event.code)) {
        status.textContent = FINAL.get(event.code);
        return;
      }
      schedule();
    });
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const command = input.value.trim();
    if (!command) return;
    history.push(command);
    if (history.length > HISTORY) history.shift();
    cursor = history.length;
    input.value = "";
    alert.clear();
    show(`> ${command}`, "echo");
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ command }));
      return;
    }
    try {
      await post(`/api/v2/servers/${ctx.id}/console`, { command });
    } catch (error) {
      reply({ status: error.status, detail: error.message, retry_after: error.problem?.retry_after });
    }
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "ArrowUp" && cursor > 0) {
      cursor -= 1;
      input.value = history[cursor];
      event.preventDefault();
    } else if (event.key === "ArrowDown" && cursor < history.length) {
      cursor += 1;
      input.value = history[cursor] ?? "";
      event.preventDefault();
    }
  });

  connect();
  input.focus();
  return () => {
    closed = true;
    clearTimeout(retryTimer);
    if (frame) cancelAnimationFrame(frame);
    if (socket) socket.close(1000);
  };
}
