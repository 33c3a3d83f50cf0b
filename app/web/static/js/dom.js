// Small DOM helpers: elements are built with h(), never from HTML strings.
let nextId = 0;

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "value") el.value = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

export function svg(tag, attrs = {}) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  return el;
}

export function uid(prefix = "f") {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

// A labelled control: the label names the input for screen readers and clicks.
export function field(label, control, hint) {
  control.id ||= uid();
  const hintEl = hint ? h("small", { class: "hint", id: `${control.id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute("aria-describedby", hintEl.id);
  const wrap = control.type === "checkbox" ? "field check" : "field";
  return h("div", { class: wrap }, h("label", { for: control.id }, label), control, hintEl);
}

export function errorMessage(error) {
  if (error && typeof error.message === "string" && error.message) return error.message;
  return "Something went wrong.";
}

// An inline alert region: show(error) puts the problem's detail in words, clear() empties it.
export function alertBox() {
  const el = h("p", { class: "alert", role: "alert", hidden: true });
  el.show = (error) => {
    el.textContent = typeof error === "string" ? error : errorMessage(error);
    el.hidden = false;
  };
  el.clear = () => {
    el.textContent = "";
    el.hidden = true;
  };
  return el;
}

export function toast(message, kind = "info") {
  const box = document.getElementById("toasts");
  const item = h("div", { class: `toast ${kind}` }, message);
  box.append(item);
  setTimeout(() => item.remove(), 5000);
}

// Run an action for a button: disabled while it runs, its error shown in `alert` or a toast.
export async function act(button, alert, work) {
  button.disabled = true;
  alert?.clear();
  try {
    return await work();
  } catch (error) {
    if (alert) alert.show(error);
    else toast(errorMessage(error), "error");
    return undefined;
  } finally {
    button.disabled = false;
  }
}

export function button(label, onclick, cls = "") {
  return h("button", { type: "button", class: cls, onclick }, label);
}

export function badge(state) {
  return h("span", { class: `badge state-${String(state).replace(/[^a-z_-]/g, "")}` }, state);
}

export function bytes(n) {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

export function when(iso) {
  if (!iso) return "—";
  const date = typeof iso === "number" ? new Date(iso * 1000) : new Date(iso);
  return Number.isNaN(date.getTime()) ? "—" : date.toLocaleString();
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.floor(seconds);
  const parts = [[Math.floor(s / 86400), "d"], [Math.floor((s % 86400) / 3600), "h"],
    [Math.floor((s % 3600) / 60), "m"], [s % 60, "s"]];
  return parts.filter(([v], i) => v || i === 3).slice(0, 2).map(([v, u]) => `${v}${u}`).join(" ");
}

export function table(headers, rows, caption) {
  return h("table", { class: "grid" },
    caption ? h("caption", { class: "sr-only" }, caption) : null,
    h("thead", {}, h("tr", {}, headers.map((title) => h("th", { scope: "col" }, title)))),
    h("tbody", {}, rows));
}

// A table cell labelled with its column, so the phone layout can show rows as cards.
export function cell(label, ...content) {
  return h("td", { "data-label": label }, ...content);
}

// replaceChildren() that skips null and false (replaceChildren would print them as text).
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}
