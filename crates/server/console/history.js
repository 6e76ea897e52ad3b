// History: totals over time (GET /v2/accounts/balance/history) as a chart and a table, and the
// total at an instant picked (GET /v2/accounts/balance?at=). The chart plots the decimal
// strings as numbers, for the eye only; the table and the instant's total are exact.
import uPlot from "./uPlot.esm.js";
import { api, query } from "./api.js";
import { el, table, freshness } from "./ui.js";

const SPANS = { "1h": 48 * 3600e3, "1d": 30 * 86400e3, "1w": 26 * 7 * 86400e3, "1mo": 365 * 86400e3 };

function local(d) {
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

export async function history(root, params) {
  const interval = params.get("interval") || "1h";
  const currency = params.get("currency") || "";
  const from = params.get("from") || local(new Date(Date.now() - (SPANS[interval] ?? SPANS["1h"])));
  const at = params.get("at") || "";
  const form = el("form", { class: "row", id: "history-form" },
    el("label", { for: "from" }, "From"), el("input", { id: "from", name: "from", type: "datetime-local", value: from }),
    el("label", { for: "interval" }, "Every"),
    el("select", { id: "interval", name: "interval" },
      Object.keys(SPANS).map((i) => el("option", { value: i, selected: i === interval }, i))),
    el("label", { for: "hcurrency" }, "Currency"),
    el("input", { id: "hcurrency", name: "currency", value: currency, placeholder: "base", size: 6 }),
    el("label", { for: "at" }, "Instant"),
    el("input", { id: "at", name: "at", type: "datetime-local", value: at }),
    el("button", { type: "submit" }, "Show"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const q = new URLSearchParams(new FormData(form));
    for (const [k, v] of [...q]) if (!v) q.delete(k);
    location.hash = `#/history?${q}`;
  });
  root.append(el("h1", {}, "History"), form);
  const iso = (v) => new Date(v).toISOString();
  if (at) {
    const answer = await api(`/v2/accounts/balance${query({ at: iso(at), currency })}`);
    root.append(el("h2", {}, "At the instant"), ...freshness(answer),
      el("p", { class: "total", id: "at-total" }, `${answer.total_balance} ${answer.currency}`));
  }
  const series = await api(`/v2/accounts/balance/history${query({ from: iso(from), interval, currency })}`);
  const points = series.points ?? [];
  const chart = el("div", { id: "chart", role: "img", "aria-label": `Total in ${series.currency}, every ${interval}, ${points.length} points` });
  root.append(el("h2", {}, `Total in ${series.currency}`), chart);
  if (points.length) {
    const xs = points.map((p) => Date.parse(p.at) / 1000);
    const ys = points.map((p) => Number(p.total_balance));
    new uPlot({
      width: Math.min(root.clientWidth || 900, 1000), height: 280,
      series: [{}, { label: `Total (${series.currency})`, stroke: "#0b4f9c", width: 2 }],
      axes: [{}, { size: 90 }],
    }, [xs, ys], chart);
  }
  root.append(table("Every point, exact", [
    ["At", (p) => p.at],
    ["Total", (p) => p.total_balance, { num: true }],
    ["Fiat", (p) => p.fiat_balance, { num: true }],
    ["Crypto", (p) => p.crypto_balance, { num: true }],
    ["Partial", (p) => (p.partial ? "yes" : "no")],
  ], points, { id: "points" }));
}
