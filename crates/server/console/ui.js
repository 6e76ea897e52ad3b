// Small DOM helpers: elements from data (text only, never HTML strings), tables, banners.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

// A table: columns are [header, cell(row), {num: true}?]; `caption` names it for screen readers.
export function table(caption, columns, rows, attrs = {}) {
  const head = el("tr", {}, columns.map(([h, , o]) => el("th", { scope: "col", class: o?.num ? "num" : null }, h)));
  const body = rows.map((r) =>
    el("tr", { "data-account": r.provider_account_id ? r.id : null }, columns.map(([, cell, o]) => el("td", { class: o?.num ? "num" : null }, cell(r) ?? "—"))),
  );
  return el("table", attrs, el("caption", {}, caption), el("thead", {}, head), el("tbody", {}, body));
}

export function time(t) {
  if (!t) return "—";
  const d = new Date(t);
  return el("time", { datetime: t, title: t }, d.toLocaleString());
}

export function seconds(s) {
  if (s === null || s === undefined) return "—";
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}

// The stale and partial banners of an answer, naming the providers and why.
export function freshness(answer) {
  const out = [];
  const warnings = answer.warnings ?? [];
  const names = (codes) => [...new Set(warnings.filter((w) => codes.includes(w.code) && w.provider).map((w) => w.provider))];
  if (answer.stale) {
    const who = names(["stale"]);
    out.push(el("div", { class: "banner stale", role: "status", "data-banner": "stale" },
      el("strong", {}, "Stale: "),
      `data from ${who.length ? who.join(", ") : "a provider"} is older than asked, because the provider failed.`,
      el("ul", {}, warnings.filter((w) => w.code === "stale").map((w) => el("li", {}, w.message)))));
  }
  if (answer.partial) {
    const who = names(warnings.map((w) => w.code).filter((c) => c !== "stale"));
    out.push(el("div", { class: "banner partial", role: "status", "data-banner": "partial" },
      el("strong", {}, "Partial: "),
      `some accounts are left out${who.length ? ` (${who.join(", ")})` : ""}.`,
      el("ul", {}, warnings.filter((w) => w.code !== "stale").map((w) => el("li", {}, w.message)))));
  }
  return out;
}

// A rate as text, with its source and as_of on hover (and for screen readers).
export function rateCell(rate) {
  if (!rate) return el("span", { class: "muted" }, "no rate");
  const source = rate.source === "manual" ? "manual" : `provider ${rate.provider ?? ""}`.trim();
  const title = `${rate.currency} → ${rate.quote}: ${source}, as of ${rate.as_of}`;
  return el("span", { "data-rate": rate.currency, title, "aria-label": `${rate.rate} ${rate.quote}, ${title}` },
    `${rate.rate} ${rate.quote}`);
}
