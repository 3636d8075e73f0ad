// The live page: one EventSource on /events/subscribe with the chosen filters, a bounded list of
// events (newest first, each id once), and a ticking balance for every stream in the list.
//
// Opened with streams= or users=, the page first loads those streams over REST (GET /streams/{id},
// after GET /users/{address}/streams), then subscribes from the event id that state is as of
// (`asOfEventId`): every later event arrives, none twice.
//
// Resuming: while the EventSource reconnects by itself it sends Last-Event-ID. When it gives up
// (readyState CLOSED: the server answered 5xx, or was restarting), the page checks the same URL with
// fetch after a jittered backoff: a 4xx (a bad filter, an unknown resume id) is shown and ends the
// retries; anything else opens a new EventSource with lastEventId=<the last id shown>. Ids sort in
// chain order, so an id at or before the last one shown is a repeat and is dropped.

import {
  AMOUNT_KEYS,
  EVENT_TYPES,
  amountText,
  backoff,
  balances,
  endDate,
  filtersFromSearch,
  formatAmount,
  searchFromFilters,
  shorten,
  subscribeParams,
  unixSeconds,
} from "./format.js";

const MAX_EVENTS = 500;
const MAX_STREAM_CARDS = 12;
const FATAL_CLIENT_STATUSES = (status) => status >= 400 && status < 500 && ![408, 425, 429].includes(status);

const $ = (id) => document.getElementById(id);
const elements = {
  status: $("status"),
  form: $("filters"),
  streams: $("streams"),
  users: $("users"),
  typeBoxes: $("type-boxes"),
  all: $("all"),
  decimals: $("decimals"),
  token: $("token"),
  filterError: $("filter-error"),
  events: $("events"),
  eventCount: $("event-count"),
  cards: $("stream-cards"),
  streamsHint: $("streams-hint"),
};

const live = {
  filters: filtersFromSearch(location.search),
  source: null,
  generation: 0, // bumped on every (re)connect: late callbacks of an old EventSource are ignored
  epoch: 0, // bumped on every filter change: late stream fetches of old filters are ignored
  lastId: null,
  attempts: 0,
  timer: null,
  received: 0,
  streams: new Map(), // "contractId:streamId" -> { card, data, asOf, fetchedAt, loading, stale }
};

// --- connection state ---------------------------------------------------------------------------

function setStatus(state, text) {
  elements.status.dataset.state = state;
  elements.status.textContent = text;
}

// An access token, when the server requires one: kept for this tab (sessionStorage), never in the
// shareable URL. EventSource cannot send headers, so it travels as the `access_token` query parameter there
// and as a Bearer header on fetches. (A `flowfi_token` cookie works without any of this.)
const TOKEN_KEY = "flowfi.token";
const token = () => sessionStorage.getItem(TOKEN_KEY) ?? "";

function authHeaders() {
  return token() ? { Authorization: `Bearer ${token()}` } : {};
}

function subscribeUrl() {
  const url = new URL("events/subscribe", document.baseURI);
  const params = subscribeParams(live.filters, live.lastId);
  if (token()) params.set("access_token", token());
  url.search = params.toString();
  return url;
}

function resumeText() {
  return live.lastId ? ` — resuming after ${live.lastId}` : "";
}

function connect() {
  clearTimeout(live.timer);
  live.source?.close();
  const generation = ++live.generation;
  const source = new EventSource(subscribeUrl());
  live.source = source;
  const again = live.attempts > 0;
  setStatus(again ? "reconnecting" : "connecting", again ? `Reconnecting${resumeText()}` : "Connecting…");

  source.onopen = () => {
    if (generation !== live.generation) return;
    live.attempts = 0;
    setStatus("live", "Live");
  };
  source.onerror = () => {
    if (generation !== live.generation) return;
    if (typeof event.data === "string") {
      // The server's own `event: error` frame, e.g. an expired access token (status 401): retrying
      // with the same token cannot help.
      source.close();
      let message = event.data;
      let status;
      try {
        ({ error: message = event.data, status } = JSON.parse(event.data));
      } catch {}
      fail(message, status);
      return;
    }
    if (source.readyState === EventSource.CLOSED) {
      scheduleReconnect();
    } else {
      setStatus("reconnecting", `Reconnecting${resumeText()}`);
    }
  };
  const onEvent = (message) => {
    if (generation !== live.generation) return;
    receive(message);
  };
  for (const type of EVENT_TYPES) source.addEventListener(type, onEvent);
}

function scheduleReconnect() {
  live.source?.close();
  live.source = null;
  live.attempts += 1;
  const delay = backoff(live.attempts);
  const generation = live.generation;
  setStatus("reconnecting", `Reconnecting in ${Math.ceil(delay / 1000)} s${resumeText()}`);
  clearTimeout(live.timer);
  live.timer = setTimeout(() => probeThenConnect(generation), delay);
}

async function probeThenConnect(generation) {
  const controller = new AbortController();
  let response;
  try {
    response = await fetch(subscribeUrl(), {
      headers: { Accept: "text/event-stream", ...authHeaders() },
      cache: "no-store",
      signal: controller.signal,
    });
  } catch {
    if (generation === live.generation) scheduleReconnect();
    return;
  }
  if (generation !== live.generation) {
    controller.abort();
    return;
  }
  if (FATAL_CLIENT_STATUSES(response.status)) {
    const body = await response.json().catch(() => ({}));
    fail(body.error ?? `the server refused the subscription (HTTP ${response.status})`, response.status);
    return;
  }
  controller.abort();
  if (response.ok) connect();
  else scheduleReconnect();
}

function fail(message, status) {
  clearTimeout(live.timer);
  live.source?.close();
  live.source = null;
  const next = status === 401
    ? "Enter a new access token and press Apply to resume"
    : "Change the filters and press Apply to start again";
  setStatus("error", `Stopped: ${message}. ${next}.`);
}

// --- events -------------------------------------------------------------------------------------

function receive(message) {
  const id = message.lastEventId;
  if (!id || (live.lastId !== null && id <= live.lastId)) return; // a repeat after a resume
  live.lastId = id;
  live.received += 1;
  if (elements.status.dataset.state !== "live") setStatus("live", "Live");
  const data = JSON.parse(message.data);
  showEvent(message.type, id, data);
  if (data.streamId != null) touchStream(data.contractId, String(data.streamId));
}

function text(tag, className, content, title) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  node.textContent = content;
  if (title) node.title = title;
  return node;
}

function streamLink(streamId) {
  const filters = { ...live.filters, streams: [streamId], users: [], types: [], all: false };
  const link = text("a", "stream", `#${streamId}`, `Only stream ${streamId}`);
  link.href = `?${searchFromFilters(filters)}`;
  return link;
}

function timeNode(iso) {
  const node = text("time", "when", iso ? new Date(iso).toLocaleString() : "", iso);
  if (iso) node.dateTime = iso;
  return node;
}

function showEvent(type, id, data) {
  const known = live.streams.get(`${data.contractId}:${data.streamId}`)?.data;
  const decimals = known ? decimalsOf(known) : live.filters.decimals;
  const item = document.createElement("li");
  item.dataset.id = id;
  item.dataset.type = type;
  const [scope, name] = type.split(".");
  item.append(text("span", `type type-${scope} type-${name}`, name.replaceAll("_", " "), type));
  item.append(data.streamId != null ? streamLink(String(data.streamId)) : text("span", "stream", "—"));
  const parties = document.createElement("span");
  parties.className = "parties";
  if (data.sender || data.recipient) {
    parties.append(
      text("span", "address", shorten(data.sender), data.sender),
      " → ",
      text("span", "address", shorten(data.recipient), data.recipient),
    );
  } else {
    for (const key of ["admin", "previousAdmin", "newAdmin", "treasury", "newTreasury"]) {
      if (data[key]) parties.append(text("span", "address", `${key} ${shorten(data[key])}`, data[key]), " ");
    }
  }
  item.append(parties);
  const amounts = document.createElement("span");
  amounts.className = "amounts";
  for (const key of AMOUNT_KEYS) {
    const shown = data[key] == null ? null : amountText(key, data[key], decimals);
    if (shown !== null) amounts.append(text("span", "amount", shown, `${data[key]} units`));
  }
  for (const key of ["feeRateBps", "newFeeRateBps"]) {
    if (data[key] != null) amounts.append(text("span", "amount", `fee ${data[key]} bps`));
  }
  item.append(amounts, timeNode(data.ledgerClosedAt));
  elements.events.prepend(item);
  while (elements.events.children.length > MAX_EVENTS) elements.events.lastElementChild.remove();
  elements.eventCount.textContent =
    live.received > MAX_EVENTS ? `(${live.received} received, newest ${MAX_EVENTS} shown)` : `(${live.received})`;
}

// --- stream balances ----------------------------------------------------------------------------

function touchStream(contractId, streamId) {
  refreshStream(cardFor(contractId, streamId), contractId, streamId);
}

/** The card of a stream, created (newest first, at most MAX_STREAM_CARDS) or moved to the top. */
function cardFor(contractId, streamId) {
  const key = `${contractId}:${streamId}`;
  let entry = live.streams.get(key);
  if (!entry) {
    entry = { card: newCard(streamId), data: null, asOf: 0n, fetchedAt: 0, loading: false, stale: false };
    live.streams.set(key, entry);
    if (live.streams.size > MAX_STREAM_CARDS) {
      const [oldestKey, oldest] = live.streams.entries().next().value;
      oldest.card.remove();
      live.streams.delete(oldestKey);
    }
  } else {
    live.streams.delete(key); // re-insert: the Map's order is least recently touched first
    live.streams.set(key, entry);
  }
  elements.cards.prepend(entry.card);
  elements.streamsHint.hidden = true;
  return entry;
}

function showState(entry, state) {
  entry.data = state;
  entry.asOf = unixSeconds(state.asOf);
  entry.fetchedAt = performance.now();
  renderCard(entry);
}

async function getJson(path) {
  const response = await fetch(new URL(path, document.baseURI), { cache: "no-store", headers: authHeaders() });
  return response.ok ? response.json() : null;
}

const INTEREST = { active: 0, paused: 1, completed: 2, cancelled: 3 };

/**
 * Load the streams the filters name (streams=, and each users= address's streams, the running ones
 * first) over REST and show their cards. Returns the event id the oldest of those states is as of:
 * subscribing after it misses nothing, and the page drops what it has already shown. Null when
 * nothing was loaded.
 */
async function loadStreams(epoch) {
  const wanted = live.filters.streams.map((streamId) => ({ streamId, contractId: null }));
  for (const user of live.filters.users) {
    const page = await getJson(`users/${encodeURIComponent(user)}/streams?limit=100`).catch(() => null);
    const mine = (page?.items ?? []).sort((a, b) =>
      (INTEREST[a.status] - INTEREST[b.status]) || (BigInt(b.streamId) > BigInt(a.streamId) ? 1 : -1));
    wanted.push(...mine.map((s) => ({ streamId: s.streamId, contractId: s.contractId })));
  }
  const chosen = wanted.slice(0, MAX_STREAM_CARDS);
  const states = await Promise.all(chosen.map(({ streamId, contractId }) => {
    const query = contractId ? `?contractId=${encodeURIComponent(contractId)}` : "";
    return getJson(`streams/${encodeURIComponent(streamId)}${query}`).catch(() => null);
  }));
  if (epoch !== live.epoch) return null;
  let position = null;
  for (const state of states.filter(Boolean).reverse()) { // cards are prepended: the first ends on top
    showState(cardFor(state.contractId, state.streamId), state);
    if (state.asOfEventId && (position === null || state.asOfEventId < position)) position = state.asOfEventId;
  }
  return position;
}

async function refreshStream(entry, contractId, streamId) {
  if (entry.loading) {
    entry.stale = true; // fetch again when the one in flight returns
    return;
  }
  entry.loading = true;
  entry.stale = false;
  const epoch = live.epoch;
  try {
    const url = new URL(`streams/${encodeURIComponent(streamId)}`, document.baseURI);
    if (contractId) url.searchParams.set("contractId", contractId);
    const response = await fetch(url, { cache: "no-store", headers: authHeaders() });
    if (epoch !== live.epoch) return;
    if (!response.ok) {
      entry.card.querySelector(".state").textContent = `unavailable (HTTP ${response.status})`;
    } else {
      showState(entry, await response.json());
    }
  } catch {
    entry.card.querySelector(".state").textContent = "unavailable (network)";
  } finally {
    entry.loading = false;
    if (entry.stale && epoch === live.epoch) refreshStream(entry, contractId, streamId);
  }
}

function newCard(streamId) {
  const card = document.createElement("li");
  card.className = "card";
  card.dataset.stream = streamId;
  const head = document.createElement("div");
  head.className = "card-head";
  head.append(streamLink(streamId), text("span", "state", "loading…"));
  const figures = document.createElement("dl");
  for (const [name, label] of [
    ["claimable", "Withdrawable now"],
    ["remaining", "Remaining deposit"],
    ["rate", "Rate"],
    ["withdrawn", "Withdrawn"],
  ]) {
    const row = document.createElement("div");
    row.append(text("dt", "", label), text("dd", name, "—"));
    figures.append(row);
  }
  card.append(head, figures, text("p", "parties", ""), text("p", "ends", ""));
  return card;
}

/** A stream's amounts are in its token's smallest unit: its token's decimals where the server knows
 * them, else the page's setting. */
function decimalsOf(data) {
  return data.tokenDecimals ?? live.filters.decimals;
}

function renderCard(entry) {
  const { card, data } = entry;
  const decimals = decimalsOf(data);
  const state = card.querySelector(".state");
  state.textContent = data.status;
  state.dataset.status = data.status;
  const rate = BigInt(data.ratePerSecond);  // none for a stream that unlocks in steps
  card.querySelector(".rate").textContent = rate === 0n ? "—" : `${formatAmount(rate, decimals)}/s`;
  card.querySelector(".withdrawn").textContent = formatAmount(data.withdrawn, decimals);
  const parties = card.querySelector(".parties");
  parties.textContent = `${shorten(data.sender)} → ${shorten(data.recipient)} · token ${data.tokenSymbol ?? shorten(data.tokenAddress)}`;
  parties.title = `${data.sender} → ${data.recipient}, token ${data.tokenAddress}`;
  tickCard(entry);
}

/** The ledger time now: the ledger time the index was at when fetched (asOf), plus the seconds since. */
function ledgerNow(entry) {
  return entry.asOf + BigInt(Math.floor((performance.now() - entry.fetchedAt) / 1000));
}

function tickCard(entry) {
  if (!entry.data) return;
  const now = ledgerNow(entry);
  const { claimable, remaining } = balances(entry.data, now);
  const decimals = decimalsOf(entry.data);
  entry.card.querySelector(".claimable").textContent = formatAmount(claimable, decimals);
  entry.card.querySelector(".remaining").textContent = formatAmount(remaining, decimals);
  entry.card.querySelector(".ends").textContent = endText(entry.data, now, claimable, decimals);
}

/** When an active stream runs dry, or that it already has: everything accrued, some not withdrawn. */
function endText(data, now, claimable, decimals) {
  if (data.status !== "active" || data.endTime == null) return "";
  if (BigInt(data.endTime) <= now) return `Fully streamed, ${formatAmount(claimable, decimals)} left to withdraw`;
  const end = endDate(data.endTime);
  return end === null ? "Never runs dry" : `Runs dry ${end.toLocaleString()}`;
}

setInterval(() => {
  for (const entry of live.streams.values()) tickCard(entry);
}, 1000);

// --- filters ------------------------------------------------------------------------------------

function splitList(value) {
  return value.split(/[\s,]+/).map((part) => part.trim()).filter(Boolean);
}

function fillForm() {
  const { filters } = live;
  elements.streams.value = filters.streams.join(", ");
  elements.users.value = filters.users.join(", ");
  elements.all.checked = filters.all;
  elements.decimals.value = String(filters.decimals);
  elements.token.value = token();
  for (const box of elements.typeBoxes.querySelectorAll("input")) box.checked = filters.types.includes(box.value);
}

function buildTypeBoxes() {
  for (const type of EVENT_TYPES) {
    const id = `type-${type.replace(".", "-")}`;
    const wrapper = document.createElement("div");
    wrapper.className = "type-box";
    const box = document.createElement("input");
    Object.assign(box, { type: "checkbox", id, name: "types", value: type });
    const label = text("label", "", type);
    label.htmlFor = id;
    wrapper.append(box, label);
    elements.typeBoxes.append(wrapper);
  }
}

function readForm() {
  const streams = splitList(elements.streams.value);
  const bad = streams.find((s) => !/^\d+$/.test(s) || s === "0" || /^0/.test(s));
  if (bad) return { error: `“${bad}” is not a stream id (a whole number from 1)` };
  const users = splitList(elements.users.value);
  const badUser = users.find((u) => !/^[GC][A-Z2-7]{55}$/.test(u));
  if (badUser) return { error: `“${shorten(badUser, 6)}” is not a Stellar address (G… or C…, 56 characters)` };
  const types = [...elements.typeBoxes.querySelectorAll("input:checked")].map((box) => box.value);
  const decimals = Number.parseInt(elements.decimals.value, 10);
  const filters = {
    streams,
    users,
    types,
    all: elements.all.checked,
    decimals: Number.isInteger(decimals) && decimals >= 0 && decimals <= 38 ? decimals : 7,
  };
  if (!streams.length && !users.length && !types.length) filters.all = true;
  return { filters };
}

function restart(filters) {
  live.filters = filters;
  live.epoch += 1;
  live.generation += 1; // the old connection's late callbacks are ignored
  live.source?.close();
  live.source = null;
  clearTimeout(live.timer);
  live.lastId = null;
  live.attempts = 0;
  live.received = 0;
  live.streams.clear();
  elements.events.replaceChildren();
  elements.cards.replaceChildren();
  elements.eventCount.textContent = "";
  elements.streamsHint.hidden = false;
  fillForm();
  start();
}

/** Load the chosen streams' state, then go live from the event that state is as of. */
async function start() {
  const epoch = live.epoch;
  if (live.filters.streams.length || live.filters.users.length) {
    setStatus("connecting", "Loading streams…");
    const position = await loadStreams(epoch);
    if (epoch !== live.epoch) return;
    live.lastId = position;
  }
  connect();
}

elements.form.addEventListener("submit", (event) => {
  event.preventDefault();
  const { filters, error } = readForm();
  elements.filterError.textContent = error ?? "";
  if (error) return;
  const given = elements.token.value.trim();
  if (given) sessionStorage.setItem(TOKEN_KEY, given);
  else sessionStorage.removeItem(TOKEN_KEY);
  const search = searchFromFilters(filters);
  if (search === searchFromFilters(live.filters) && live.lastId !== null) {
    // The same filters (a new token, say): resume after the last event shown.
    live.attempts = 0;
    connect();
    return;
  }
  history.pushState(null, "", search ? `?${search}` : location.pathname);
  restart(filters);
});

window.addEventListener("popstate", () => restart(filtersFromSearch(location.search)));

buildTypeBoxes();
fillForm();
// On a phone the filters start folded, so that the events are on the first screen.
if (window.matchMedia("(max-width: 760px)").matches) $("filter-panel").open = false;
start();
