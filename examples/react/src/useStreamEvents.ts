// useStreamEvents: live FlowFi events in a React component, resuming by itself.
//
//   const { events, connected, lastEventId, error } = useStreamEvents({ streams: [7], baseUrl });
//
// One EventSource on `${baseUrl}/events/subscribe` with the given filters. While it reconnects by
// itself the browser sends Last-Event-ID and the server replays what was missed. When it gives up
// (readyState CLOSED: a 5xx, a server restarting), the hook checks the same URL with fetch after a
// jittered backoff: a 4xx (a bad filter, an unknown resume id) becomes `error` and ends the retries;
// anything else opens a new EventSource with lastEventId=<the last id received>. Event ids sort in
// chain order, so an id at or before the last one received is a repeat and is dropped: each event
// appears once. Changing the filters starts over (live from now); unmounting closes the connection.

import { useEffect, useState } from "react";

/** The SSE event names the FlowFi API sends. */
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
] as const;

export type EventType = (typeof EVENT_TYPES)[number];

/** The JSON of one event: where it happened, plus the event's fields in camelCase. Amounts, u64 ids
 * and times are decimal strings (use BigInt, never Number, for amounts). */
export interface EventPayload {
  id: string;
  type: EventType;
  contractId: string;
  ledger: number;
  ledgerClosedAt: string;
  transactionHash: string;
  streamId?: string;
  sender?: string;
  recipient?: string;
  amount?: string;
  [field: string]: unknown;
}

export interface StreamEvent {
  /** The chain event id ("%019d-%010d"); sorts in chain order. */
  id: string;
  type: EventType;
  data: EventPayload;
}

export interface UseStreamEventsOptions {
  /** Stream ids to follow. */
  streams?: ReadonlyArray<string | number | bigint>;
  /** G.../C... addresses: every event concerning them. */
  users?: readonly string[];
  /** Only these event types (with no streams/users/all: every event of these types). */
  types?: readonly EventType[];
  /** Every event. */
  all?: boolean;
  /** The API's root, e.g. "https://flowfi.example"; default: this page's origin. */
  baseUrl?: string;
  /** How many events to keep (newest first); older ones are dropped. Default 500. */
  maxEvents?: number;
  /** An access token, for servers that require one: sent as the `access_token` query parameter
   * (EventSource cannot send headers). A `flowfi_token` cookie works without it. */
  token?: string;
  /** First reconnect delay after the EventSource gives up, doubled per failure up to 30 s. Default 1000. */
  retryDelayMs?: number;
}

export interface UseStreamEventsResult {
  /** The newest `maxEvents` events, newest first, each id once. */
  events: StreamEvent[];
  /** True while a connection is open. */
  connected: boolean;
  /** The id of the newest event received: where a reconnect resumes. */
  lastEventId: string | null;
  /** Why the subscription stopped (a refused filter, an unknown resume id), or null. */
  error: string | null;
}

const SUBSCRIBE_PATH = "/events/subscribe";
const MAX_RETRY_DELAY_MS = 30_000;

/** The subscription URL for the filters, resuming after `lastEventId` when given. */
export function subscribeUrl(
  options: Pick<UseStreamEventsOptions, "streams" | "users" | "types" | "all" | "baseUrl" | "token">,
  lastEventId: string | null = null,
): string {
  const base = (options.baseUrl ?? "").replace(/\/+$/, "");
  const origin = typeof location !== "undefined" && location.origin !== "null" ? location.origin : undefined;
  const url = new URL(base + SUBSCRIBE_PATH, origin);
  const lists: Array<[string, ReadonlyArray<unknown> | undefined]> = [
    ["streams", options.streams],
    ["users", options.users],
    ["types", options.types],
  ];
  for (const [name, values] of lists) {
    if (values && values.length > 0) url.searchParams.set(name, values.map(String).join(","));
  }
  if (options.all) url.searchParams.set("all", "true");
  if (lastEventId) url.searchParams.set("lastEventId", lastEventId);
  if (options.token) url.searchParams.set("access_token", options.token);
  return url.toString();
}

/** Exponential, capped, half of it random: many clients dropped together do not return together. */
export function backoffMs(attempt: number, baseMs: number): number {
  const ceiling = Math.min(MAX_RETRY_DELAY_MS, baseMs * 2 ** (attempt - 1));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

function isFatalStatus(status: number): boolean {
  return status >= 400 && status < 500 && status !== 408 && status !== 425 && status !== 429;
}

const INITIAL: UseStreamEventsResult = { events: [], connected: false, lastEventId: null, error: null };

export function useStreamEvents(options: UseStreamEventsOptions): UseStreamEventsResult {
  const { streams, users, types, all = false, baseUrl, token, maxEvents = 500, retryDelayMs = 1000 } = options;
  const [result, setResult] = useState<UseStreamEventsResult>(INITIAL);
  // Array literals change identity on every render: depend on their contents.
  const filterKey = JSON.stringify([streams?.map(String), users, types, all, baseUrl, token]);

  useEffect(() => {
    const filters = { streams, users, types, all, baseUrl, token };
    let lastId: string | null = null;
    let source: EventSource | null = null;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let probe: AbortController | null = null;
    let attempts = 0;
    let stopped = false;
    setResult(INITIAL);

    const onEvent = (message: MessageEvent<string>) => {
      const id = message.lastEventId;
      if (stopped || !id || (lastId !== null && id <= lastId)) return; // a repeat after a resume
      lastId = id;
      const event: StreamEvent = { id, type: message.type as EventType, data: JSON.parse(message.data) };
      setResult((previous) => ({
        ...previous,
        connected: true,
        lastEventId: id,
        events: [event, ...previous.events].slice(0, maxEvents),
      }));
    };

    const fail = (message: string) => {
      stopped = true;
      source?.close();
      source = null;
      setResult((previous) => ({ ...previous, connected: false, error: message }));
    };

    const open = () => {
      if (stopped) return;
      const current = new EventSource(subscribeUrl(filters, lastId));
      source = current;
      current.onopen = () => {
        if (source !== current) return;
        attempts = 0;
        setResult((previous) => ({ ...previous, connected: true, error: null }));
      };
      // addEventListener, not onerror: some EventSource implementations give the `onerror` property
      // only transport errors, while the server's `event: error` frame reaches the listeners.
      current.addEventListener("error", (event: Event) => {
        if (source !== current) return;
        const data = (event as MessageEvent).data;
        if (typeof data === "string") {
          // The server's own `event: error` frame (e.g. an expired token): retrying cannot help.
          let message = data;
          try {
            message = JSON.parse(data).error ?? data;
          } catch {
            // not JSON: show it as it is
          }
          fail(message);
          return;
        }
        setResult((previous) => (previous.connected ? { ...previous, connected: false } : previous));
        if (current.readyState === EventSource.CLOSED) scheduleReconnect();
      });
      for (const type of EVENT_TYPES) current.addEventListener(type, onEvent as EventListener);
    };

    const scheduleReconnect = () => {
      source?.close();
      source = null;
      attempts += 1;
      clearTimeout(timer);
      timer = setTimeout(probeThenOpen, backoffMs(attempts, retryDelayMs));
    };

    // Learn why the EventSource gave up (EventSource hides the status): a 4xx is final.
    const probeThenOpen = async () => {
      if (stopped) return;
      probe = new AbortController();
      let response: Response;
      try {
        response = await fetch(subscribeUrl(filters, lastId), {
          headers: { Accept: "text/event-stream" },
          cache: "no-store",
          signal: probe.signal,
        });
      } catch {
        if (!stopped) scheduleReconnect();
        return;
      }
      if (stopped) {
        probe.abort();
        return;
      }
      if (isFatalStatus(response.status)) {
        const body = (await response.json().catch(() => ({}))) as { error?: string };
        fail(body.error ?? `the server refused the subscription (HTTP ${response.status})`);
        return;
      }
      probe.abort();
      probe = null;
      if (response.ok) open();
      else scheduleReconnect();
    };

    open();
    return () => {
      stopped = true;
      clearTimeout(timer);
      probe?.abort();
      source?.close();
      source = null;
    };
    // filterKey stands for streams, users, types, all, baseUrl and token.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [filterKey, maxEvents, retryDelayMs]);

  return result;
}
