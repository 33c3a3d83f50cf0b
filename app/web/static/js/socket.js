// A ticketed WebSocket that reconnects with exponential backoff until closed.
import { ApiError, socketUrl, ticket } from "./api.js";

export function watchSocket(path, onMessage, onState = () => {}) {
  let socket = null;
  let attempt = 0;
  let timer = null;
  let closed = false;
  const retry = () => {
    if (closed) return;
    const delay = Math.min(30000, 500 * 2 ** attempt) * (0.8 + Math.random() * 0.4);
    attempt += 1;
    onState(`reconnecting in ${Math.round(delay / 1000)} s`);
    timer = setTimeout(connect, delay);
  };
  async function connect() {
    let value;
    try {
      value = await ticket();
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 401)) retry();
      return;
    }
    if (closed) return;
    socket = new WebSocket(socketUrl(path, value));
    socket.addEventListener("open", () => {
      attempt = 0;
      onState("live");
    });
    socket.addEventListener("message", (event) => onMessage(JSON.parse(event.data)));
    socket.addEventListener("close", (event) => {
      socket = null;
      if (event.code === 4403 || event.code === 4404) onState("closed");
      else retry();
    });
  }
  connect();
  return () => {
    closed = true;
    clearTimeout(timer);
    socket?.close(1000);
  };
}
