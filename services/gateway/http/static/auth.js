// Access tokens for a gateway with AUTH_REQUIRED: a token field, and optionally the
// operator's token URL (PAGE_TOKEN_URL, from api/info), which the page GETs with the
// browser's credentials and which answers {"token": "<JWT>"}. The token is kept in
// sessionStorage (this tab, until it closes), sent in the Socket.IO `auth` payload and as
// `Authorization: Bearer` on the HTTP API. Nothing here ever puts the token in the page.

const KEY = "quantum-signals.token";
const $ = (id) => document.getElementById(id);

let token = load();
let config = { required: false, token_url: null };
let onChange = () => {};
let problem = null; // what went wrong last; kept until a new token, so a refusal that
                    // only says "no token" does not hide why there is none

function load() {
  try { return sessionStorage.getItem(KEY) || null; } catch { return null; }
}

export function currentToken() { return token; }

/** Headers for the gateway's HTTP API. */
export function authHeaders() { return token ? { Authorization: `Bearer ${token}` } : {}; }

function setToken(value, why) {
  token = value || null;
  problem = null;
  try {
    if (token) sessionStorage.setItem(KEY, token); else sessionStorage.removeItem(KEY);
  } catch { /* storage refused: the token lasts until the page is reloaded */ }
  $("token-forget").hidden = !token;
  onChange(token, why);
}

/** GET the token URL with credentials; the token, or an Error saying what went wrong. */
export async function fetchToken(url, base) {
  const res = await fetch(new URL(url, base), {
    credentials: "include", cache: "no-store", headers: { Accept: "application/json" },
  });
  if (!res.ok) throw new Error(`the token URL answered HTTP ${res.status}`);
  const body = await res.json().catch(() => null);
  if (!body || typeof body.token !== "string" || !body.token) {
    throw new Error("the token URL's answer has no \"token\"");
  }
  return body.token;
}

function hint(why) {
  const where = config.token_url
    ? ` Press "Get a token" to fetch one from ${new URL(config.token_url, location.href).href}`
      + " (sign in there first if it asks), or paste one."
    : " Ask the operator of this gateway for an access token (a JWT) and paste it here.";
  return `${why ? `${why} ` : "This gateway sends signals only to clients with an access token."}`
    + `${where} It is kept in this browser tab only, until the tab is closed.`;
}

/** Show the panel with what is wrong (null: the last problem, or just how to get a token). */
export function askForToken(why) {
  if (why) problem = why;
  $("auth").hidden = false;
  $("auth-entry").hidden = false;
  $("auth-hint").textContent = hint(problem);
  document.body.dataset.auth = "needed";
}

async function getFromUrl(base) {
  try {
    setToken(await fetchToken(config.token_url, base), "fetched");
  } catch (err) {
    askForToken(`Could not get a token: ${err.message}.`);
  }
}

/** Wire the panel; `changed(token, why)` runs after every new or forgotten token. */
export function setupAuth(base, changed) {
  onChange = changed;
  $("token-forget").hidden = !token;
  $("auth-form").addEventListener("submit", (event) => {
    event.preventDefault(); // handled here; the page's CSP allows no form submission anyway
    const input = $("token-input");
    const value = input.value.trim();
    input.value = "";
    if (value) setToken(value, "entered");
  });
  $("token-fetch").addEventListener("click", () => getFromUrl(base));
  $("token-forget").addEventListener("click", () => { setToken(null, "forgotten"); askForToken(null); });
}

/** From api/info's `auth`: ask for a token when one is required and none is kept. */
export function configureAuth(info, base) {
  if (!info || typeof info !== "object") return;
  config = { required: info.required === true, token_url: typeof info.token_url === "string" ? info.token_url : null };
  $("token-fetch").hidden = !config.token_url;
  if (!config.required || token) return;
  if (config.token_url) getFromUrl(base); // single sign-on: often no click needed
  else askForToken(null);
}

/**
 * The gateway's `auth_expiring`: with a token URL, fetch a fresh token and hand it over on
 * the open connection (`auth_refresh`, no reconnect); without one, ask for a new token.
 */
export async function renewToken(base, socket, expiresAt) {
  const when = new Date(expiresAt * 1000).toLocaleTimeString();
  if (!config.token_url) {
    askForToken(`Your access token expires at ${when}; paste a new one to stay connected.`);
    return;
  }
  try {
    const fresh = await fetchToken(config.token_url, base);
    setToken(fresh, "refreshed");
    socket.emit("auth_refresh", { token: fresh });
  } catch (err) {
    askForToken(`Your access token expires at ${when} and a new one could not be fetched: ${err.message}.`);
  }
}

/** Connected: with a token, the panel shrinks to one line and the Forget button. */
export function tokenAccepted() {
  if (!token) {
    // Connected without one: the gateway does not require it (a refused optional token
    // that was then forgotten); nothing to ask for.
    if (!config.required) $("auth").hidden = true;
    return;
  }
  $("auth").hidden = false;
  $("auth-entry").hidden = true;
  $("auth-hint").textContent = "Signed in with an access token, kept in this browser tab only.";
  document.body.dataset.auth = "ok";
}

export const AUTH_REFUSALS = new Set([
  "missing_token", "malformed_token", "token_expired", "token_not_yet_valid", "bad_signature",
  "algorithm_not_allowed", "unknown_key", "wrong_audience", "wrong_issuer", "missing_claim",
  "invalid_claims", "subject_changed",
]);
