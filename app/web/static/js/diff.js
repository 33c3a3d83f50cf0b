// A line diff (longest common subsequence) for the 412 conflict view, and unified-diff rendering.
import { h } from "./dom.js";

const MAX_CELLS = 4_000_000;

export function lineDiff(before, after) {
  const a = before.split("\n");
  const b = after.split("\n");
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start += 1;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA -= 1;
    endB -= 1;
  }
  const x = a.slice(start, endA);
  const y = b.slice(start, endB);
  const ops = a.slice(0, start).map((line) => [" ", line]);
  if (x.length * y.length > MAX_CELLS) {
    ops.push(...x.map((line) => ["-", line]), ...y.map((line) => ["+", line]));
  } else {
    const width = y.length + 1;
    const table = new Uint32Array((x.length + 1) * width);
    for (let i = x.length - 1; i >= 0; i -= 1) {
      for (let j = y.length - 1; j >= 0; j -= 1) {
        table[i * width + j] = x[i] === y[j] ? table[(i + 1) * width + j + 1] + 1
          : Math.max(table[(i + 1) * width + j], table[i * width + j + 1]);
      }
    }
    let i = 0;
    let j = 0;
    while (i < x.length || j < y.length) {
      if (i < x.length && j < y.length && x[i] === y[j]) {
        ops.push([" ", x[i]]);
        i += 1;
        j += 1;
      } else if (j < y.length && (i === x.length || table[i * width + j + 1] >= table[(i + 1) * width + j])) {
        ops.push(["+", y[j]]);
        j += 1;
      } else {
        ops.push(["-", x[i]]);
        i += 1;
      }
    }
  }
  ops.push(...a.slice(endA).map((line) => [" ", line]));
  return ops;
}

const KIND = { "+": "add", "-": "del", " ": "same", "@": "hunk" };

export function renderOps(ops, label) {
  return h("pre", { class: "diff", "aria-label": label, tabindex: 0 },
    ops.map(([sign, line]) => h("span", { class: `d-${KIND[sign] ?? "same"}` }, `${sign} ${line}\n`)));
}

export function renderUnified(text, label) {
  const ops = text.split("\n").filter((line) => line !== "").map((line) => {
    if (line.startsWith("+++") || line.startsWith("---")) return ["@", line];
    return [line[0] === "@" ? "@" : line[0] || " ", line.slice(1)];
  });
  if (!ops.length) return h("p", { class: "muted" }, "No differences.");
  return renderOps(ops, label);
}
