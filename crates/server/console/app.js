// The console: sign-in, the page router (#/page?params) and the error line. Every page calls
// the public API with the tab's key, so it shows exactly what that key may see.
import { api, roleOf, session, ApiError } from "./api.js";
import { overview } from "./overview.js";
import { customers } from "./customers.js";
import { sync } from "./sync.js";
import { history } from "./history.js";
import { rates } from "./rates.js";

const PAGES = { overview, customers, sync, history, rates };
const $ = (id) => document.getElementById(id);

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

async function guard(work) {
  showError("");
  try {
    await work();
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      session.clear();
      render();
    }
    showError(e instanceof ApiError ? e.message : `The console failed: ${e.message}`);
  }
}

function route() {
  const [name, q] = (location.hash.replace(/^#\/?/, "") || "overview").split("?");
  return { name: PAGES[name] ? name : "overview", params: new URLSearchParams(q ?? "") };
}

async function render() {
  const signedIn = Boolean(session.key());
  $("signin").hidden = signedIn;
  $("nav").hidden = !signedIn;
  $("signout").hidden = !signedIn;
  $("who").textContent = signedIn ? `Signed in (${session.role()})` : "";
  const page = $("page");
  page.replaceChildren();
  document.body.dataset.page = "";
  if (!signedIn) {
    $("key").focus();
    return;
  }
  const { name, params } = route();
  for (const a of $("nav").querySelectorAll("a")) {
    if (a.getAttribute("href") === `#/${name}`) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  document.title = `${name[0].toUpperCase()}${name.slice(1)} · Coffer console`;
  await guard(() => PAGES[name](page, params));
  // Tests and screen readers alike know when the page is drawn.
  document.body.dataset.page = name;
}

$("signin-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const key = $("key").value.trim();
  guard(async () => {
    const role = await roleOf(key);
    session.set(key, role);
    $("key").value = "";
    await render();
    $("main").focus();
  });
});
$("signout").addEventListener("click", () => {
  session.clear();
  render();
});
window.addEventListener("hashchange", () => render().then(() => $("main").focus()));
window.coffer = { guard, render, api };
render();
