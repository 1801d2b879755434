// The browser demo: two panels, one per server, talking to the same-origin API.
// Loaded as a file (the Content-Security-Policy allows no inline script).
"use strict";

(function () {
  const API = { stateless: "/api/stateless", stateful: "/api/stateful" };
  const STORAGE_KEY = "statebridge-demo-session";
  const LOG_LENGTH = 6;
  const SCALE_OUT_READS = 6;

  const $ = (id) => document.getElementById(id);
  const seen = new Set();
  const state = { sent: 0, sessionId: null, expiresAt: null, timer: null, products: [] };

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  // The instance that answered (X-Instance-ID), added to the instances seen; `label`, when
  // given, is the element that shows it.
  function showInstance(label, instance) {
    if (!instance) return;
    if (label) $(label).textContent = instance;
    seen.add(instance);
    $("instances").textContent = Array.from(seen).sort().join(", ");
  }

  // One request, whatever its status; resolves to {response, envelope, instance} (envelope
  // null when the body is not JSON).
  async function send(side, method, path, body, sessionId) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (sessionId) headers["Session-ID"] = sessionId;
    const response = await fetch(API[side] + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
    let envelope = null;
    try {
      envelope = await response.json();
    } catch (_) {
      envelope = null;
    }
    return { response, envelope, instance: response.headers.get("X-Instance-ID") || "?" };
  }

  // One request of a panel; resolves to {envelope, headers}, rejects with ApiError on an
  // error status.
  async function call(side, method, path, body) {
    const sessionId = side === "stateful" ? state.sessionId : null;
    const { response, envelope, instance } = await send(side, method, path, body, sessionId);
    showInstance(side === "stateless" ? "sl-instance" : "sf-instance", instance);
    if (!response.ok) {
      const message = envelope && envelope.message ? envelope.message : `HTTP ${response.status}`;
      throw new ApiError(response.status, message);
    }
    return { envelope, headers: response.headers };
  }

  function status(text, isError) {
    const line = $("sf-status");
    line.textContent = text;
    line.classList.toggle("error", Boolean(isError));
  }

  function money(value) {
    return Number(value).toFixed(2);
  }

  // ---- stateless panel -------------------------------------------------------------

  async function sendStateless() {
    const button = $("sl-send");
    button.disabled = true;
    try {
      const { envelope } = await call("stateless", "GET", "/info");
      const data = envelope.data;
      state.sent += 1;
      $("sl-mine").textContent = String(state.sent);
      $("sl-count").textContent = String(data.requestCount);
      $("sl-random").textContent = Number(data.randomValue).toFixed(6);
      const known = $("sl-known");
      const why = document.createElement("small");
      why.textContent = data.message;
      known.replaceChildren("No", why);
      const item = document.createElement("li");
      item.textContent =
        `request #${data.requestCount}: random ${Number(data.randomValue).toFixed(6)}` +
        ` - "${data.note}"`;
      const log = $("sl-log");
      log.prepend(item);
      while (log.children.length > LOG_LENGTH) log.lastElementChild.remove();
    } catch (error) {
      $("sl-known").textContent = `error: ${error.message}`;
    } finally {
      button.disabled = false;
    }
  }

  // ---- stateful panel --------------------------------------------------------------

  function tick() {
    if (!state.expiresAt) return;
    const left = Math.max(0, Math.round((state.expiresAt - Date.now()) / 1000));
    const minutes = Math.floor(left / 60);
    const seconds = String(left % 60).padStart(2, "0");
    $("sf-expires").textContent = `${minutes}:${seconds}`;
    if (left === 0) {
      endLocally("The session expired: the server has forgotten you.");
    }
  }

  function showSession(session) {
    state.expiresAt = Date.parse(session.expiresAt);
    $("sf-session-id").textContent = session.id;
    const visits = session.data && session.data.visitCount ? session.data.visitCount : 0;
    $("sf-visits").textContent = String(visits);
    tick();
  }

  function renderCart(cart) {
    const body = $("sf-cart").querySelector("tbody");
    body.replaceChildren();
    for (const item of cart.items) {
      const row = document.createElement("tr");
      row.dataset.product = item.productId;
      const name = document.createElement("td");
      name.textContent = item.name;
      const quantity = document.createElement("td");
      quantity.className = "qty";
      quantity.textContent = String(item.quantity);
      const price = document.createElement("td");
      price.textContent = money(item.price * item.quantity);
      const action = document.createElement("td");
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "link";
      remove.textContent = "remove";
      remove.addEventListener("click", () => act(() => removeItem(item.productId)));
      action.append(remove);
      row.append(name, quantity, price, action);
      body.append(row);
    }
    $("sf-total").textContent = money(cart.total);
  }

  function showPreferences(preferences) {
    $("sf-prefs").textContent = JSON.stringify(preferences);
    if (preferences.theme) $("sf-theme").value = preferences.theme;
    if (preferences.language) $("sf-language").value = preferences.language;
    $("stateful").classList.toggle("dark", preferences.theme === "dark");
  }

  async function refreshSession() {
    const { envelope } = await call("stateful", "GET", "/session");
    showSession(envelope.data.session);
  }

  function setSession(id) {
    state.sessionId = id;
    if (id) sessionStorage.setItem(STORAGE_KEY, id);
    else sessionStorage.removeItem(STORAGE_KEY);
    $("sf-session-id").textContent = id || "\u2014";
    $("sf-session").hidden = !id;
    $("sf-start").hidden = Boolean(id);
    clearInterval(state.timer);
    state.timer = id ? setInterval(tick, 1000) : null;
  }

  function endLocally(message) {
    setSession(null);
    state.expiresAt = null;
    $("stateful").classList.remove("dark");
    status(message, false);
  }

  // Runs one stateful action; a 401 means the session is gone (expired or ended).
  async function act(action) {
    try {
      await action();
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        endLocally(`${error.message}: the server no longer knows this session.`);
      } else {
        status(`Error: ${error.message}`, true);
      }
    }
  }

  async function loadEverything(userName) {
    await refreshSession();
    const cart = await call("stateful", "GET", "/cart");
    renderCart(cart.envelope.data.cart);
    const profile = await call("stateful", "GET", "/profile");
    const user = profile.envelope.data.profile;
    $("sf-user-name").textContent = userName || `${user.name} (${user.id})`;
    showPreferences(user.preferences || {});
  }

  async function begin() {
    const userId = $("sf-user").value;
    const { envelope, headers } = await call("stateful", "POST", "/session", {
      userId,
      data: { startedFrom: "browser demo" },
    });
    const data = envelope.data;
    setSession(headers.get("Session-ID") || data.session.id);
    await loadEverything(`${data.user.name} (${data.user.id})`);
    status("Session started. The server will recognise every request that carries its id.");
  }

  async function visit() {
    const { envelope } = await call("stateful", "GET", "/demonstrate/stateful");
    $("sf-visits").textContent = String(envelope.data.visitCount);
    status(envelope.data.explanation[1]);
    await refreshSession();
  }

  async function addItem(productId) {
    const { envelope } = await call("stateful", "POST", "/cart/add", { productId, quantity: 1 });
    renderCart(envelope.data.cart);
    status(`Added ${productId}; the cart lives on the server.`);
    await refreshSession();
  }

  async function removeItem(productId) {
    const { envelope } = await call("stateful", "DELETE", `/cart/remove/${productId}`);
    renderCart(envelope.data.cart);
    await refreshSession();
  }

  async function clearCart() {
    const { envelope } = await call("stateful", "DELETE", "/cart");
    renderCart(envelope.data.cart);
    await refreshSession();
  }

  async function savePreferences() {
    const preferences = { theme: $("sf-theme").value, language: $("sf-language").value };
    const { envelope } = await call("stateful", "PUT", "/profile/preferences", { preferences });
    showPreferences(envelope.data.profile.preferences);
    status("Preferences saved on the server.");
    await refreshSession();
  }

  async function end() {
    await call("stateful", "DELETE", "/session");
    endLocally("Session terminated: the server has forgotten your visits and cart.");
  }

  // ---- scale-out: which instance answered, and did it know the session? ---------------

  function logExchange(number, request, instance, status, verdict) {
    const row = document.createElement("tr");
    row.dataset.instance = instance;
    row.dataset.status = String(status);
    row.classList.toggle("lost", verdict === "lost");
    for (const text of [String(number), request, instance, String(status), verdict]) {
      const cell = document.createElement("td");
      cell.textContent = text;
      row.append(cell);
    }
    $("so-log").querySelector("tbody").append(row);
  }

  function scaleOutSummary(maker, answered, lost) {
    const found = SCALE_OUT_READS - lost.length;
    if (answered.size < 2) {
      return `Found ${found} of ${SCALE_OUT_READS} times, all answered by ${maker}: only one ` +
        "instance answered. Put two behind nginx to see the difference.";
    }
    if (lost.length > 0) {
      const others = Array.from(new Set(lost)).join(", ");
      return `Lost ${lost.length} of ${SCALE_OUT_READS} times: ${others} never saw the ` +
        `session made on ${maker}. Each instance keeps its sessions in its own memory.`;
    }
    return `Found ${found} of ${SCALE_OUT_READS} times on ${answered.size} instances: ` +
      "they share the store that holds the session.";
  }

  async function sendScaleOut() {
    const button = $("so-send");
    const summary = $("so-summary");
    button.disabled = true;
    $("so-log").querySelector("tbody").replaceChildren();
    summary.textContent = "";
    summary.classList.remove("error");
    try {
      const userId = $("sf-user").value || "user001";
      const body = { userId, data: { startedFrom: "scale-out demo" } };
      const made = await send("stateful", "POST", "/session", body);
      if (!made.response.ok) throw new ApiError(made.response.status, made.envelope.message);
      const sessionId = made.response.headers.get("Session-ID") || made.envelope.data.session.id;
      showInstance(null, made.instance);
      logExchange(1, "POST /session", made.instance, made.response.status, "made");
      const answered = new Set([made.instance]);
      const lost = [];
      for (let number = 2; number <= SCALE_OUT_READS + 1; number += 1) {
        const read = await send("stateful", "GET", "/session", undefined, sessionId);
        showInstance(null, read.instance);
        answered.add(read.instance);
        const status = read.response.status;
        if (status !== 200) lost.push(read.instance);
        const verdict = status === 200 ? "found" : status === 401 ? "lost" : "error";
        logExchange(number, "GET /session", read.instance, status, verdict);
      }
      summary.textContent = scaleOutSummary(made.instance, answered, lost);
    } catch (error) {
      summary.textContent = `Error: ${error.message}`;
      summary.classList.add("error");
    } finally {
      button.disabled = false;
    }
  }

  // ---- start-up ----------------------------------------------------------------------

  async function loadCatalog() {
    const users = await call("stateless", "GET", "/users");
    const select = $("sf-user");
    for (const user of users.envelope.data.users) {
      const option = document.createElement("option");
      option.value = user.id;
      option.textContent = `${user.name} (${user.id})`;
      select.append(option);
    }
    const products = await call("stateless", "GET", "/products");
    state.products = products.envelope.data.products;
    const shelf = $("sf-products");
    for (const product of state.products) {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.product = product.id;
      button.textContent = `+ ${product.name} (${money(product.price)})`;
      button.addEventListener("click", () => act(() => addItem(product.id)));
      shelf.append(button);
    }
  }

  async function resume() {
    const saved = sessionStorage.getItem(STORAGE_KEY);
    if (!saved) return;
    setSession(saved);
    await act(async () => {
      await loadEverything(null);
      status("Welcome back: the server still remembers this session.");
    });
  }

  document.addEventListener("DOMContentLoaded", async () => {
    $("sl-send").addEventListener("click", sendStateless);
    $("so-send").addEventListener("click", sendScaleOut);
    $("sf-begin").addEventListener("click", () => act(begin));
    $("sf-visit").addEventListener("click", () => act(visit));
    $("sf-clear").addEventListener("click", () => act(clearCart));
    $("sf-save-prefs").addEventListener("click", () => act(savePreferences));
    $("sf-end").addEventListener("click", () => act(end));
    try {
      await loadCatalog();
    } catch (error) {
      status(`Cannot load users and products: ${error.message}`, true);
    }
    await resume();
    document.body.dataset.ready = "true";
  });
})();
