// Rates: the table, each with its source and as_of; admins set a manual rate.
import { api, session } from "./api.js";
import { el, table, time } from "./ui.js";

export async function rates(root) {
  root.append(el("h1", {}, "Rates"));
  const t = await api("/v2/rates");
  if (session.isAdmin()) root.append(manualForm(t.base));
  root.append(table(`Rates, in ${t.base} unless said`, [
    ["Currency", (r) => r.currency],
    ["Rate", (r) => `${r.rate} ${r.quote}`, { num: true }],
    ["Source", (r) => (r.source === "manual" ? "manual" : `provider ${r.provider ?? ""}`)],
    ["As of", (r) => time(r.as_of)],
  ], t.rates, { id: "rates" }));
}

function manualForm(base) {
  const status = el("p", { role: "status", id: "rate-status" });
  const form = el("form", { class: "row", id: "rate-form" },
    el("label", { for: "rate-currency" }, "Currency"),
    el("input", { id: "rate-currency", name: "currency", required: true, size: 6, placeholder: "USD" }),
    el("label", { for: "rate-value" }, `Value of one unit in ${base}`),
    el("input", { id: "rate-value", name: "value", required: true, inputmode: "decimal", placeholder: "0.92" }),
    el("button", { type: "submit" }, "Set manual rate"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const currency = form.currency.value.trim();
    // The value is sent as the text typed: Coffer reads it exactly.
    await window.coffer.guard(async () => {
      await api("/v2/rates", { method: "PUT", body: { rates: { [currency]: form.value.value.trim() } } });
      status.textContent = `${currency} set.`;
      window.coffer.render();
    });
  });
  return el("section", { "aria-labelledby": "manual-title" }, el("h2", { id: "manual-title" }, "Set a manual rate"), form, status);
}
