// The web inspector's page: plain JavaScript, no build step. Every value shown goes through textContent (no HTML
// injection from stored data).
"use strict";

const main = document.getElementById("main");
let poll = null;

function el(tag, attrs, ...children) {
  const svg = ["svg", "g", "circle", "line", "path", "text"].includes(tag);
  const e = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

async function api(path) {
  const r = await fetch("api/" + path);  // relative: the page works under / and under /ui/
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

const short = (id) => (id ? "#" + id.slice(-8) : "");
const enc = encodeURIComponent;
const text = (v) => (typeof v === "string" ? v : JSON.stringify(v));

function show(...nodes) {
  main.replaceChildren(...nodes.flat(Infinity).filter((n) => n !== null && n !== undefined));
}

function fail(e) {
  show(el("p", { class: "error", id: "error" }, String(e.message || e)));
}

function table(id, columns, rows) {
  return el("table", { id },
    el("thead", {}, el("tr", {}, columns.map((c) => el("th", {}, c)))),
    el("tbody", {}, rows));
}

// ----------------------------------------------------------------------------- lists
async function threadsPage() {
  const threads = await api("threads");
  const search = el("input", { id: "search", placeholder: "search thread ids", type: "search" });
  const waiting = el("select", { id: "waiting-filter" },
    el("option", { value: "" }, "all threads"), el("option", { value: "yes" }, "waiting on an interrupt"));
  const body = el("tbody");
  function render() {
    const q = search.value.trim().toLowerCase();
    body.replaceChildren(...threads
      .filter((t) => t.thread_id.toLowerCase().includes(q))
      .filter((t) => !waiting.value || t.pending_interrupts.length > 0)
      .map((t) => el("tr", { "data-thread": t.thread_id },
        el("td", {}, el("a", { href: "#/thread/" + enc(t.thread_id) }, t.thread_id)),
        el("td", {}, t.generations), el("td", {}, t.checkpoints), el("td", {}, t.updated || ""),
        el("td", {}, t.pending_interrupts.map(text).join("; ")))));
  }
  search.addEventListener("input", render);
  waiting.addEventListener("change", render);
  render();
  show(el("h2", {}, `${threads.length} threads`), search, waiting,
    el("table", { id: "threads" },
      el("thead", {}, el("tr", {}, ["thread", "generations", "checkpoints", "updated", "waits on"].map((c) => el("th", {}, c)))),
      body));
}

async function sessionsPage() {
  const sessions = await api("sessions");
  const search = el("input", { id: "search", placeholder: "search ids, threads, tags", type: "search" });
  const status = el("select", { id: "status-filter" }, ["", "ACTIVE", "EXPIRED", "ENDED"].map((s) =>
    el("option", { value: s }, s || "any status")));
  const body = el("tbody");
  function render() {
    const q = search.value.trim().toLowerCase();
    body.replaceChildren(...sessions
      .filter((s) => !status.value || s.status === status.value)
      .filter((s) => JSON.stringify([s.session_id, s.thread_id, s.tags]).toLowerCase().includes(q))
      .map((s) => el("tr", { "data-session": s.session_id },
        el("td", {}, el("a", { href: "#/session/" + enc(s.session_id) }, s.session_id)),
        el("td", {}, s.status), el("td", {}, s.updated), el("td", {}, `${s.steps}/${s.quota}`),
        el("td", {}, s.thread_id || ""), el("td", {}, Object.entries(s.tags).map(([k, v]) => `${k}=${v}`).join(", ")))));
  }
  search.addEventListener("input", render);
  status.addEventListener("change", render);
  render();
  show(el("h2", {}, `${sessions.length} sessions`), search, status,
    el("table", { id: "sessions" },
      el("thead", {}, el("tr", {}, ["session", "status", "updated", "steps", "thread", "tags"].map((c) => el("th", {}, c)))),
      body));
}

// ----------------------------------------------------------------------------- a thread
function layout(rows) {
  // Columns: a checkpoint continues its parent's column if it is the parent's first child; other children (forks)
  // open new columns. Rows: newest at the top.
  const byId = new Map(rows.map((r) => [r.checkpoint_id, r]));
  const oldestFirst = [...rows].reverse();
  const col = new Map();
  const taken = new Set();
  let next = 0;
  for (const r of oldestFirst) {
    const p = r.parent_checkpoint_id;
    if (p && byId.has(p) && !taken.has(p)) {
      col.set(r.checkpoint_id, col.get(p));
      taken.add(p);
    } else {
      col.set(r.checkpoint_id, next++);
    }
  }
  return { col, columns: next };
}

function tree(box, rows, selected, onpick) {
  // Drawn as one SVG of the whole height, but only the rows in view (and the edges crossing the view) are in the
  // page: a thread of 10,000 checkpoints draws as fast as one of 30. Scrolling draws the rows that come into view.
  const { col, columns } = layout(rows);
  const dx = 22, dy = 26, left = 14, top = 14;
  const width = left + columns * dx + 280;
  const height = top + rows.length * dy;
  const index = new Map(rows.map((r, i) => [r.checkpoint_id, i]));
  const yOf = (i) => top + i * dy;
  const x = (id) => left + col.get(id) * dx;
  const svg = el("svg", { id: "tree", width, height, viewBox: `0 0 ${width} ${height}` });
  function draw() {
    const view = box.clientHeight || 800;
    const first = Math.max(0, Math.floor((box.scrollTop - top) / dy) - 20);
    const last = Math.min(rows.length - 1, Math.ceil((box.scrollTop + view) / dy) + 20);
    const lo = yOf(first), hi = yOf(last);
    const parts = [];
    rows.forEach((r, i) => {
      const p = r.parent_checkpoint_id;
      const j = p === null || p === undefined ? undefined : index.get(p);
      if (j === undefined) return;
      const y1 = yOf(i), y2 = yOf(j);
      if (y2 < lo || y1 > hi) return;  // the edge does not cross the drawn rows
      parts.push(el("path", { class: "edge", d: `M${x(r.checkpoint_id)},${y1} L${x(p)},${y2}` }));
    });
    for (let i = first; i <= last; i++) {
      const r = rows[i];
      const cls = ["node", r.fork ? "fork" : "", r.waiting ? "waiting" : "", r.checkpoint_id === selected ? "selected" : ""];
      parts.push(el("g", { class: cls.filter(Boolean).join(" "), "data-checkpoint": r.checkpoint_id, onclick: () => onpick(r) },
        el("circle", { cx: x(r.checkpoint_id), cy: yOf(i), r: 6 }),
        el("text", { x: left + columns * dx + 4, y: yOf(i) + 4 },
          `${short(r.checkpoint_id)} ${r.step} ${r.source}${r.checkpoint_ns ? " [" + r.checkpoint_ns + "]" : ""}` +
          `${r.next.length ? " → " + r.next.join(",") : ""}${r.fork ? " (fork)" : ""}`)));
    }
    svg.replaceChildren(...parts);
  }
  let pending = false;
  box.onscroll = () => {
    if (!pending) pending = true, requestAnimationFrame(() => { pending = false; draw(); });
  };
  box.replaceChildren(svg);
  draw();
}

function value(v) {
  if (Array.isArray(v) && v.length && v.every((m) => m && typeof m === "object" && "role" in m && "content" in m)) {
    return el("div", { class: "messages" }, v.map((m) => el("div", { class: "msg " + m.role },
      el("span", { class: "role" }, m.role), text(m.content),
      (m.tool_calls || []).map((c) => el("div", { class: "muted" }, `→ ${c.name}(${JSON.stringify(c.args)})`)))));
  }
  const json = JSON.stringify(v, null, 2);
  if (json.length <= 20000) return el("pre", {}, json);
  // A large value is laid out when asked for: the page stays quick on a long thread's state.
  const box = el("details", { class: "large" }, el("summary", {},
    Array.isArray(v) ? `${v.length} items (${json.length} characters)` : `${json.length} characters`));
  box.addEventListener("toggle", () => {
    if (box.open && box.children.length === 1) box.append(el("pre", {}, json));
  });
  return box;
}

function statePanel(st) {
  return el("div", { id: "state" },
    el("h3", {}, `checkpoint ${st.checkpoint_id}`),
    el("p", { class: "muted" }, `step ${st.step}, ${st.source}, ${st.ts}; next: ${st.next.join(", ") || "(the end)"}`),
    st.interrupts.length ? el("div", { id: "interrupts" }, el("h3", {}, st.waiting ? "waits on" : "interrupts (answered)"),
      st.interrupts.map((i) => el("pre", {}, JSON.stringify(i, null, 2)))) : null,
    Object.entries(st.values).map(([ch, v]) => el("div", { class: "channel", "data-channel": ch }, el("h3", {}, ch), value(v))),
    el("h3", {}, "writes per task"),
    Object.keys(st.writes).length
      ? el("table", { id: "writes" }, el("tbody", {}, Object.entries(st.writes).map(([task, chs]) =>
        el("tr", {}, el("td", {}, task), el("td", {}, chs.join(", "))))))
      : el("p", { class: "muted" }, "none"));
}

function diffPanel(d) {
  const lines = [];
  for (const [ch, v] of Object.entries(d.added)) lines.push(el("div", { class: "added" }, `+ ${ch}: ${text(v)}`));
  for (const [ch, v] of Object.entries(d.removed)) lines.push(el("div", { class: "removed" }, `- ${ch}: ${text(v)}`));
  for (const [ch, c] of Object.entries(d.changed)) {
    lines.push(el("div", { class: "changed", "data-channel": ch }, `~ ${ch}:`,
      "appended" in c ? value(c.appended) : el("pre", {}, JSON.stringify(c, null, 2))));
  }
  return el("div", { id: "diff" }, el("h3", {}, `diff ${short(d.a.checkpoint_id)} → ${short(d.b.checkpoint_id)}`),
    lines.length ? lines : el("p", { class: "muted" }, "no change in the graph's channels"));
}

const FIRST_PAINT = 300;  // checkpoints read before the page first draws; the rest follows

async function threadPage(tid) {
  let rows = await api(`threads/${enc(tid)}/history?limit=${FIRST_PAINT}`);
  let complete = rows.length < FIRST_PAINT;
  let selected = rows[0] && rows[0].checkpoint_id;
  const treeBox = el("div", { class: "tree" });
  const detail = el("div", { class: "detail" });
  const count = el("span", { id: "count" });
  const a = el("input", { id: "diff-a", size: 12, placeholder: "#checkpoint" });
  const b = el("input", { id: "diff-b", size: 12, placeholder: "#checkpoint" });
  const diffBox = el("div");
  async function pick(r) {
    selected = r.checkpoint_id;
    tree(treeBox, rows, selected, pick);
    try {
      const q = `threads/${enc(tid)}/state?checkpoint=${enc(r.checkpoint_id)}`;
      const st = await api(q);
      st.waiting = r.waiting;
      detail.replaceChildren(statePanel(st));
    } catch (e) {
      detail.replaceChildren(el("p", { class: "error" }, e.message));
    }
  }
  function draw() {
    count.textContent = complete ? `${rows.length} checkpoints` : `newest ${rows.length} checkpoints (reading the rest…)`;
    tree(treeBox, rows, selected, pick);
  }
  const go = el("button", { id: "diff-go", onclick: async () => {
    try {
      diffBox.replaceChildren(diffPanel(await api(`threads/${enc(tid)}/diff?a=${enc(a.value)}&b=${enc(b.value)}`)));
    } catch (e) {
      diffBox.replaceChildren(el("p", { class: "error" }, e.message));
    }
  } }, "diff");
  draw();
  if (rows.length > 1) b.value = short(rows[0].checkpoint_id), a.value = short(rows[1].checkpoint_id);
  show(el("h2", {}, `thread ${tid} `, count), el("div", {}, "compare ", a, " with ", b, " ", go), diffBox,
    el("div", { class: "columns" }, treeBox, detail));
  if (rows[0]) await pick(rows[0]);
  if (!complete) {
    rows = await api(`threads/${enc(tid)}/history`);
    complete = true;
    draw();
  }
  // Live: new checkpoints appear while a graph runs.
  document.getElementById("live").hidden = false;
  poll = setInterval(async () => {
    try {
      const head = await api(`threads/${enc(tid)}/head`);
      if (head.newest !== (rows[0] && rows[0].checkpoint_id)) {
        rows = await api(`threads/${enc(tid)}/history`);
        draw();
      }
    } catch (e) { /* the next poll retries */ }
  }, 1000);
}

async function sessionPage(sid) {
  const s = await api(`sessions/${enc(sid)}`);
  const steps = await api(`sessions/${enc(sid)}/steps`);
  show(el("h2", {}, `session ${s.session_id}`),
    el("table", { id: "session-info" }, el("tbody", {},
      [["status", s.status], ["ARN", s.arn], ["created", s.created], ["updated", s.updated],
        ["quota", `${s.steps} of ${s.quota} steps used, ${s.invocations} invocations`],
        ["thread", s.thread_id || ""], ["metadata", JSON.stringify(s.metadata)], ["tags", JSON.stringify(s.tags)]]
        .map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v))))),
    el("h3", {}, `${steps.length} steps`),
    steps.map((st) => el("div", { class: "step", "data-step": st.step_id },
      el("div", { class: "muted" }, `${st.time}  step ${st.step_id}  invocation ${st.invocation_id}`),
      st.content_blocks.map((blk) => "text" in blk
        ? el("pre", {}, blk.text.length > 2000 ? blk.text.slice(0, 2000) + "…" : blk.text)
        : el("div", {}, `image: ${blk.image.format}, ${blk.image.size} bytes`)),
      st.decoded ? el("details", {}, el("summary", {}, `decoded: ${st.decoded.kind}`), value(st.decoded)) : null)));
}

async function route() {
  if (poll) clearInterval(poll), poll = null;
  document.getElementById("live").hidden = true;
  const h = location.hash.replace(/^#\/?/, "");
  const [page, ...rest] = h.split("/");
  const arg = decodeURIComponent(rest.join("/"));
  try {
    if (page === "thread") await threadPage(arg);
    else if (page === "sessions") await sessionsPage();
    else if (page === "session") await sessionPage(arg);
    else await threadsPage();
  } catch (e) {
    fail(e);
  }
}

window.addEventListener("hashchange", route);
route();
