// Sync health, from GET /v2/sync/status (admins): per provider its breaker, quota, pairs and
// lag; then the failing pairs, worst first.
import { api } from "./api.js";
import { el, table, time, seconds } from "./ui.js";

export async function sync(root) {
  root.append(el("h1", {}, "Sync health"));
  const s = await api("/v2/sync/status");
  root.append(el("p", { class: "muted" }, "As of ", time(s.now)));
  root.append(table("Providers", [
    ["Provider", (p) => (p.kind ? `${p.provider} (${p.kind})` : `${p.provider} (not configured)`)],
    ["Breaker", (p) => (p.breaker ? el("span", { class: `badge ${p.breaker}` }, p.breaker.replace("_", "-")) : "—")],
    ["Quota", (p) => quota(p.quota)],
    ["Pairs", (p) => String(p.pairs.total), { num: true }],
    ["Due", (p) => String(p.pairs.due), { num: true }],
    ["Leased", (p) => String(p.pairs.leased), { num: true }],
    ["Failing", (p) => String(p.pairs.failing), { num: true }],
    ["Never synced", (p) => String(p.pairs.never_observed), { num: true }],
    ["Lag p50 / p99 / max", (p) => (p.lag ? `${seconds(p.lag.p50_seconds)} / ${seconds(p.lag.p99_seconds)} / ${seconds(p.lag.max_seconds)}` : "—")],
    ["Last webhook", (p) => time(p.last_webhook_at)],
  ], s.providers, { id: "providers" }));
  root.append(el("h2", {}, "Failing links"));
  if (!s.failing.length) {
    root.append(el("p", { id: "no-failing" }, "No link is failing."));
    return;
  }
  root.append(table("Failing links, worst first", [
    ["Customer", (f) => el("a", { href: `#/customers?id=${encodeURIComponent(f.customer_id)}` }, f.customer_id)],
    ["Provider", (f) => f.provider],
    ["Failures", (f) => String(f.failures), { num: true }],
    ["Last error", (f) => f.last_error_kind ?? "—"],
    ["Failing since", (f) => (f.failing_since ? time(f.failing_since) : f.last_success ? "—" : "never synced")],
    ["Last error at", (f) => time(f.last_error_at)],
    ["Last success", (f) => time(f.last_success)],
  ], s.failing, { id: "failing" }));
}

function quota(q) {
  if (!q) return "—";
  if (!q.rate_limit) return "unlimited";
  return `${q.available} of 1 call ready · ${q.share_per_second}/s here of ${q.rate_limit}/s`;
}
