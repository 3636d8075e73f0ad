// Pure helpers of the live page: filters <-> URL, exact amounts, shortened addresses, and a stream's
// balance at a given ledger time (indexer/accrual.py's `claimable`, ported with BigInt).

/** The SSE event names the API sends (indexer/events.py). */
export const EVENT_TYPES = [
  "stream.created",
  "stream.topped_up",
  "stream.withdrawn",
  "stream.completed",
  "stream.cancelled",
  "stream.paused",
  "stream.resumed",
  "stream.fee_collected",
  "protocol.initialized",
  "protocol.fee_config_updated",
  "protocol.admin_transferred",
  "stream.recipient_transferred",
  "stream.step_vesting_created",
  "stream.hybrid_cliff_created",
  "stream.milestone_unlocked",
  "stream.allowance_created",
  "stream.rate_modified",
  "stream.dispute_requested",
  "stream.dispute_resolved",
  "stream.closed",
  "protocol.pause_status",
  "protocol.paused",
  "protocol.emergency_guardian_updated",
  "protocol.contract_upgraded",
  "protocol.state_migrated",
];

/** Payload keys holding amounts in the token's smallest unit (the contract's i128 fields). */
export const AMOUNT_KEYS = [
  "amount",
  "depositedAmount",
  "newDepositedAmount",
  "ratePerSecond",
  "totalWithdrawn",
  "amountWithdrawn",
  "refundedAmount",
  "feeAmount",
  "settledAmount",
  "cliffUnlockAmount",
  "oldRatePerSecond",
  "newRatePerSecond",
];

export const DEFAULT_DECIMALS = 7;

/** Every value of a list parameter: repeated keys and comma-separated values both count. */
function listParam(params, name) {
  return params
    .getAll(name)
    .flatMap((value) => value.split(","))
    .map((value) => value.trim())
    .filter(Boolean);
}

/** The page's filters from a query string; nothing chosen means everything. */
export function filtersFromSearch(search) {
  const params = new URLSearchParams(search);
  const filters = {
    streams: listParam(params, "streams"),
    users: listParam(params, "users"),
    types: listParam(params, "types").filter((t) => EVENT_TYPES.includes(t)),
    all: ["true", "1", "yes"].includes((params.get("all") || "").toLowerCase()),
    decimals: DEFAULT_DECIMALS,
  };
  const decimals = Number.parseInt(params.get("decimals") ?? "", 10);
  if (Number.isInteger(decimals) && decimals >= 0 && decimals <= 38) filters.decimals = decimals;
  if (!filters.streams.length && !filters.users.length && !filters.types.length) filters.all = true;
  return filters;
}

/** The query string that reproduces `filters` (shareable), without the leading "?". */
export function searchFromFilters(filters) {
  const params = new URLSearchParams();
  if (filters.streams.length) params.set("streams", filters.streams.join(","));
  if (filters.users.length) params.set("users", filters.users.join(","));
  if (filters.types.length) params.set("types", filters.types.join(","));
  if (filters.all) params.set("all", "true");
  if (filters.decimals !== DEFAULT_DECIMALS) params.set("decimals", String(filters.decimals));
  return params.toString();
}

/** The subscription's query parameters (filters, plus where to resume from). */
export function subscribeParams(filters, lastEventId) {
  const params = new URLSearchParams();
  if (filters.streams.length) params.set("streams", filters.streams.join(","));
  if (filters.users.length) params.set("users", filters.users.join(","));
  if (filters.types.length) params.set("types", filters.types.join(","));
  if (filters.all) params.set("all", "true");
  if (lastEventId) params.set("lastEventId", lastEventId);
  return params;
}

/** An amount in the token's smallest unit as a decimal string: ("125000000", 7) -> "12.5". */
export function formatAmount(units, decimals = DEFAULT_DECIMALS) {
  let value = BigInt(units);
  const negative = value < 0n;
  if (negative) value = -value;
  const scale = 10n ** BigInt(decimals);
  const whole = (value / scale).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const fraction = value % scale;
  const text = fraction === 0n
    ? whole
    : `${whole}.${fraction.toString().padStart(decimals, "0").replace(/0+$/, "")}`;
  return negative ? `-${text}` : text;
}

/**
 * An amount field of an event as its line shows it ("new deposited amount 12.5"), a rate per second
 * with "/s"; null for a rate of zero (a stream that unlocks in steps has none). As `flowfi tail` writes it.
 */
export function amountText(key, units, decimals = DEFAULT_DECIMALS) {
  const rate = /ratePerSecond$/i.test(key);
  if (rate && BigInt(units) === 0n) return null;
  const label = key.replace(/[A-Z]/g, (c) => ` ${c.toLowerCase()}`);
  return `${label} ${formatAmount(units, decimals)}${rate ? "/s" : ""}`;
}

/** A stream's endTime (unix seconds) as a Date; null past JavaScript's dates (u64::MAX: never runs dry). */
export function endDate(endTime) {
  const date = new Date(Number(endTime) * 1000);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** G... and C... addresses as their first and last four characters. */
export function shorten(address, keep = 4) {
  if (!address || address.length <= 2 * keep + 1) return address ?? "";
  return `${address.slice(0, keep)}…${address.slice(-keep)}`;
}

/**
 * What a stream holds at ledger time `now` (unix seconds, BigInt): `claimable`, what the recipient
 * could withdraw now, and `remaining`, the deposit not yet withdrawn nor claimable. The contract's
 * calculate_claimable (indexer/accrual.py), ported with BigInt: frozen at pausedAt while paused, nothing
 * before the cliff; linear from lastUpdateTime, steps in order (stopping at the first locked one), or a
 * hybrid's lump at the cliff then linear from it. Finished streams hold none.
 * `stream` is the JSON of GET /streams/{id}: amounts and times as decimal strings.
 */
export function balances(stream, now) {
  if (["cancelled", "completed", "closed"].includes(stream.status)) {
    return { claimable: 0n, remaining: 0n };
  }
  const left = BigInt(stream.deposited) - BigInt(stream.withdrawn);
  const claimable = claimableAt(stream, now, left < 0n ? 0n : left);
  return { claimable, remaining: left - claimable };
}

function claimableAt(stream, now, remaining) {
  const at = stream.pausedAt != null ? BigInt(stream.pausedAt) : now;
  if (stream.cliffTime != null && at < BigInt(stream.cliffTime)) return 0n;
  const withdrawn = BigInt(stream.withdrawn);
  const rate = BigInt(stream.ratePerSecond);
  const clamp = (value) => (value < 0n ? 0n : value > remaining ? remaining : value);
  if (stream.schedule === "steps") {
    let unlocked = 0n;
    for (let i = 0; i < (stream.stepTimes ?? []).length; i += 1) {
      if (BigInt(stream.stepTimes[i]) > at) break;
      unlocked += BigInt(stream.stepAmounts[i]);
    }
    return clamp(unlocked - withdrawn);
  }
  if (stream.schedule === "hybrid") {
    const lump = BigInt(stream.cliffAmount ?? "0");
    let linear = (at - BigInt(stream.cliffTime)) * rate;
    const rest = BigInt(stream.deposited) - lump;
    if (linear > rest) linear = rest;
    return clamp(lump + linear - withdrawn);
  }
  let elapsed = at - BigInt(stream.lastUpdateTime);
  if (elapsed < 0n) elapsed = 0n;
  return clamp(elapsed * rate);
}

/** Unix seconds (BigInt) of an ISO time, or of a unix-seconds number/string. */
export function unixSeconds(value) {
  if (typeof value === "number" || /^\d+$/.test(String(value))) return BigInt(value);
  return BigInt(Math.floor(Date.parse(value) / 1000));
}

/** The reconnect delay in ms for attempt 1, 2, ...: exponential, capped, half of it random. */
export function backoff(attempt, baseMs = 1000, capMs = 30000) {
  const ceiling = Math.min(capMs, baseMs * 2 ** (attempt - 1));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}
