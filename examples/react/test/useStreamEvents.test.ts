// useStreamEvents in a real React tree (react-dom on jsdom), with the `eventsource` package as the
// EventSource, against a real HTTP server that drops connections mid-burst.

import assert from "node:assert/strict";
import { after, afterEach, before, test } from "node:test";

import { EventSource as NodeEventSource } from "eventsource";
import { JSDOM } from "jsdom";
import { createElement } from "react";
import { createRoot, type Root } from "react-dom/client";

import { eventId, SseServer, type Step, TOKEN_EXPIRED } from "./sseServer.ts";
import {
  subscribeUrl,
  useStreamEvents,
  type UseStreamEventsOptions,
  type UseStreamEventsResult,
} from "../src/useStreamEvents.ts";

const dom = new JSDOM("<!doctype html><div id='root'></div>");
const globals = globalThis as Record<string, unknown>;

before(() => {
  globals.window = dom.window;
  globals.document = dom.window.document;
  globals.EventSource = NodeEventSource;
});

after(() => dom.window.close());

let root: Root | null = null;
let server: SseServer | null = null;

afterEach(async () => {
  root?.unmount();
  root = null;
  await server?.stop();
  server = null;
});

interface Mounted {
  latest: () => UseStreamEventsResult;
  rerender: (options: UseStreamEventsOptions) => void;
}

function mount(options: UseStreamEventsOptions): Mounted {
  let latest: UseStreamEventsResult | null = null;
  function Probe(props: { options: UseStreamEventsOptions }) {
    latest = useStreamEvents(props.options);
    return null;
  }
  const mounted = createRoot(document.getElementById("root")!);
  root = mounted;
  mounted.render(createElement(Probe, { options }));
  return {
    latest: () => latest ?? { events: [], connected: false, lastEventId: null, error: null },
    rerender: (next) => mounted.render(createElement(Probe, { options: next })),
  };
}

async function until(condition: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function serve(total: number, plan: (n: number) => Step): Promise<SseServer> {
  server = new SseServer(total, plan);
  await server.start();
  return server;
}

test("every event arrives exactly once, in order, across cuts, clean closes and 503s", async () => {
  const sse = await serve(150, (n) => {
    if (n % 5 === 4) return { kind: "status", status: 503, error: "restarting" };
    return { kind: "events", count: 1 + ((n * 7) % 9), end: n % 2 === 0 ? "cut" : "close" };
  });
  const hook = mount({ streams: [1, 2], baseUrl: sse.url, maxEvents: 1000, retryDelayMs: 20 });
  await until(() => hook.latest().events.length >= 150, "150 events");
  await sleep(200); // a late repeat would show up here
  const { events, lastEventId, connected } = hook.latest();
  const expected = Array.from({ length: 150 }, (_, n) => eventId(n));
  assert.deepEqual(events.map((e) => e.id).reverse(), expected);
  assert.equal(lastEventId, eventId(149));
  assert.equal(connected, true);
  assert.equal(events[0]!.data.amount, (10n ** 20n + 149n).toString());
  assert.equal(events[0]!.type, "stream.withdrawn");
  // both ways of resuming were used: the EventSource's own (header) and the hook's (query parameter)
  assert.ok(sse.requests.some((r) => r.lastEventIdHeader !== null));
  assert.ok(sse.requests.some((r) => r.lastEventIdHeader === null && r.query.get("lastEventId") !== null));
  assert.ok(sse.requests.every((r) => r.query.get("streams") === "1,2"));
});

test("keeps the newest maxEvents, newest first", async () => {
  const sse = await serve(40, () => ({ kind: "events", count: 40, end: "hold" }));
  const hook = mount({ all: true, baseUrl: sse.url, maxEvents: 10 });
  await until(() => hook.latest().lastEventId === eventId(39), "the last event");
  const { events } = hook.latest();
  assert.deepEqual(
    events.map((e) => e.id),
    Array.from({ length: 10 }, (_, i) => eventId(39 - i)),
  );
});

test("a refused filter becomes `error` and is not retried", async () => {
  const sse = await serve(10, () => ({ kind: "status", status: 400, error: "types: unknown event type 'nope'" }));
  // @ts-expect-error: a type the server does not know, on purpose
  const hook = mount({ types: ["nope"], baseUrl: sse.url, retryDelayMs: 20 });
  await until(() => hook.latest().error !== null, "the error");
  assert.match(hook.latest().error!, /unknown event type/);
  assert.equal(hook.latest().connected, false);
  const asked = sse.requests.length;
  await sleep(300);
  assert.equal(sse.requests.length, asked, "no retries after a 400");
  assert.ok(asked <= 2, "one attempt, one check of the answer");
});

test("an unknown resume id (a 400 naming lastEventId) stops with the server's message", async () => {
  const sse = await serve(20, (n) =>
    n === 0
      ? { kind: "events", count: 3, end: "close" }
      : { kind: "status", status: 400, error: "unknown event id", parameter: "lastEventId" },
  );
  const hook = mount({ all: true, baseUrl: sse.url, retryDelayMs: 20 });
  await until(() => hook.latest().error !== null, "the error");
  assert.equal(hook.latest().error, "unknown event id");
  assert.equal(hook.latest().events.length, 3);
  const asked = sse.requests.length;
  await sleep(300);
  assert.equal(sse.requests.length, asked, "no retries after a 400");
});

test("the server's error frame (an expired token) stops with its message, after the events before it", async () => {
  const sse = await serve(20, () => ({ kind: "events", count: 4, end: "expire" }));
  const hook = mount({ all: true, baseUrl: sse.url, retryDelayMs: 20 });
  await until(() => hook.latest().error !== null, "the error");
  assert.equal(hook.latest().error, TOKEN_EXPIRED);
  assert.equal(hook.latest().events.length, 4);
  assert.equal(hook.latest().connected, false);
  const asked = sse.requests.length;
  await sleep(300);
  assert.equal(sse.requests.length, asked, "no retries with the expired token");
});

test("unmounting closes the connection", async () => {
  const sse = await serve(5, () => ({ kind: "events", count: 5, end: "hold" }));
  const hook = mount({ all: true, baseUrl: sse.url });
  await until(() => hook.latest().events.length === 5, "5 events");
  assert.equal(sse.openConnections, 1);
  root!.unmount();
  root = null;
  await until(() => sse.openConnections === 0, "the server to see the connection closed");
});

test("a re-render with equal filters keeps the connection; new filters start over", async () => {
  const sse = await serve(5, () => ({ kind: "events", count: 5, end: "hold" }));
  const hook = mount({ streams: [1], baseUrl: sse.url });
  await until(() => hook.latest().events.length === 5, "5 events");
  hook.rerender({ streams: [1], baseUrl: sse.url }); // a new array, the same filter
  await sleep(100);
  assert.equal(sse.requests.length, 1);
  hook.rerender({ streams: [2], baseUrl: sse.url });
  await until(() => sse.requests.length === 2 && hook.latest().events.length === 5, "5 events again");
  assert.deepEqual(
    sse.requests.map((r) => r.query.get("streams")),
    ["1", "2"],
  );
  await until(() => sse.openConnections === 1, "the first connection closed");
});

test("subscribeUrl puts filters in the comma-separated form", () => {
  assert.equal(
    subscribeUrl({ streams: [1, 2n], users: ["GA", "CB"], types: ["stream.created"], all: true, baseUrl: "http://x/" }, "9-1"),
    "http://x/events/subscribe?streams=1%2C2&users=GA%2CCB&types=stream.created&all=true&lastEventId=9-1",
  );
});
