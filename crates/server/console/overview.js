// Overview: totals by currency, fiat and crypto, in a target the user picks, with the rates
// behind them, the stale and partial banners, and coverage for all-customer answers.
import { api, query } from "./api.js";
import { el, table, freshness, rateCell, time } from "./ui.js";

const TARGETS = ["EUR", "USD", "GBP", "CHF", "BTC", "ETH", "USDC"];

export async function overview(root, params) {
  const target = params.get("currency") || "";
  const customer = params.get("customer_id") || "";
  const refresh = params.get("refresh") === "1";
  const form = el("form", { class: "row", id: "overview-form" },
    el("label", { for: "target" }, "Target currency"),
    el("select", { id: "target", name: "currency" },
      el("option", { value: "" }, "Base currency"),
      TARGETS.map((c) => el("option", { value: c, selected: c === target }, c))),
    el("label", { for: "customer" }, "Customer"),
    el("input", { id: "customer", name: "customer_id", value: customer, placeholder: "all in scope" }),
    el("button", { type: "submit" }, "Show"),
    el("button", { type: "button", class: "secondary", id: "refresh" }, "Refresh from providers"));
  root.append(el("h1", {}, "Overview"), form);
  const go = (extra) => {
    const q = new URLSearchParams(new FormData(form));
    for (const [k, v] of Object.entries(extra)) q.set(k, v);
    for (const [k, v] of [...q]) if (!v) q.delete(k);
    location.hash = `#/overview?${q}`;
  };
  form.addEventListener("submit", (e) => { e.preventDefault(); go({}); });
  form.querySelector("#refresh").addEventListener("click", () => go({ refresh: "1", t: Date.now() }));

  const answer = await api(`/v2/accounts/balance${query({
    currency: target, customer_id: customer, stack: "currency", max_age: refresh ? 0 : undefined,
  })}`);
  root.append(...freshness(answer));
  root.append(el("p", { class: "total", id: "total", "data-currency": answer.currency },
    `${answer.total_balance} ${answer.currency}`));
  root.append(el("p", {}, `Fiat ${answer.fiat_balance} ${answer.currency} · crypto ${answer.crypto_balance} ${answer.currency} · `,
    `${answer.accounts_count} accounts`));
  if (answer.coverage) {
    const c = answer.coverage;
    root.append(el("p", { class: "muted", id: "coverage" },
      `Covers ${c.customers} customers, data fetched from `, time(c.oldest_as_of), " to ", time(c.newest_as_of), "."));
  }
  const rates = new Map((answer.rates ?? []).map((r) => [r.currency, r]));
  root.append(el("h2", {}, "By currency"), table(`Totals by currency, converted to ${answer.currency}`, [
    ["Currency", (g) => g.currency],
    ["Kind", (g) => (g.is_crypto ? "crypto" : "fiat")],
    ["Balance", (g) => g.balance, { num: true }],
    [`In ${answer.currency}`, (g) => g.balance_in_base ?? "unconverted", { num: true }],
    ["Rate", (g) => (g.currency === answer.currency ? "1" : rateCell(rates.get(g.currency)))],
    ["Accounts", (g) => String(g.accounts_count), { num: true }],
  ], answer.groups ?? [], { id: "groups" }));
  if ((answer.unconverted ?? []).length) {
    root.append(el("h2", {}, "Unconverted"), table("Accounts with no rate to the target", [
      ["Account", (u) => u.id], ["Currency", (u) => u.currency],
      ["Balance", (u) => u.balance, { num: true }], ["Why", (u) => u.reason],
    ], answer.unconverted));
  }
}
