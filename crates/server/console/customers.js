// Customers: search; one customer's accounts across providers with wallets per network; a
// refresh button. Admins list customers; a reader's customers are those its accounts show.
import { api, query, session } from "./api.js";
import { el, table, freshness, time } from "./ui.js";

async function allCustomers() {
  if (session.isAdmin()) {
    const out = [];
    let after;
    do {
      const page = await api(`/v2/customers${query({ limit: 100, after })}`);
      out.push(...page.data.map((c) => ({ id: c.id, name: c.name })));
      after = page.next_after;
    } while (after);
    return out;
  }
  // A reader sees exactly its scope: the customers of the accounts it may read.
  const ids = new Set();
  let cursor;
  do {
    const page = await api(`/v2/accounts${query({ limit: 100, cursor })}`);
    page.data.forEach((a) => ids.add(a.customer_id));
    cursor = page.next_cursor;
  } while (cursor);
  return [...ids].sort().map((id) => ({ id, name: null }));
}

export async function customers(root, params) {
  const search = (params.get("q") || "").toLowerCase();
  const id = params.get("id");
  root.append(el("h1", {}, "Customers"));
  if (id) return customer(root, id, params.get("refresh") === "1");
  const form = el("form", { class: "row", role: "search" },
    el("label", { for: "q" }, "Search"),
    el("input", { id: "q", name: "q", value: search, placeholder: "id or name" }),
    el("button", { type: "submit" }, "Search"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    location.hash = `#/customers${query({ q: form.q.value })}`;
  });
  root.append(form);
  const list = (await allCustomers()).filter((c) =>
    !search || c.id.toLowerCase().includes(search) || (c.name ?? "").toLowerCase().includes(search));
  root.append(table(`${list.length} customers`, [
    ["Customer", (c) => el("a", { href: `#/customers${query({ id: c.id })}`, "data-customer": c.id }, c.id)],
    ["Name", (c) => c.name ?? "—"],
  ], list, { id: "customer-list" }));
}

async function customer(root, id, refresh) {
  const back = el("a", { href: "#/customers" }, "← All customers");
  const again = el("button", { type: "button", id: "refresh" }, "Refresh from providers");
  again.addEventListener("click", () => {
    location.hash = `#/customers${query({ id, refresh: "1", t: Date.now() })}`;
  });
  root.append(el("p", {}, back), el("h2", {}, id), again);
  const answer = await api(`/v2/accounts/balance${query({ customer_id: id, details: "true", max_age: refresh ? 0 : undefined })}`);
  root.append(...freshness(answer));
  root.append(el("p", { class: "total" }, `${answer.total_balance} ${answer.currency}`));
  const accounts = [...(answer.details?.fiat_accounts ?? []), ...(answer.details?.crypto_assets ?? [])];
  const providers = [...new Set(accounts.map((a) => a.provider))].sort();
  for (const p of providers) {
    const mine = accounts.filter((a) => a.provider === p);
    root.append(el("h3", { "data-provider": p }, `${p} · as of `, time(answer.as_of?.[p])), table(`${mine.length} accounts at ${p}`, [
      ["Currency", (a) => a.currency],
      ["Balance", (a) => a.balance, { num: true }],
      [`In ${answer.currency}`, (a) => a.balance_in_base ?? "unconverted", { num: true }],
      ["Status", (a) => a.status],
      ["IBAN / wallets", (a) => wallets(a)],
    ], mine));
  }
}

function wallets(a) {
  if (a.iban) return a.iban;
  if (!a.wallets?.length) return "—";
  return el("ul", {}, a.wallets.map((w) =>
    el("li", {}, el("strong", {}, w.network_name ?? w.network), " ", el("code", {}, w.address), w.tag ? ` tag ${w.tag}` : "")));
}
