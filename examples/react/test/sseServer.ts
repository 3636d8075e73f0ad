// A small SSE server speaking the FlowFi API's protocol, misbehaving on purpose: it serves a fixed
// sequence of events from just after Last-Event-ID (header, else the lastEventId query parameter),
// and each connection follows a plan: send k events then cut the connection (mid-frame), close it
// cleanly or end it with the API's `event: error` frame of an expired token, or answer with a status
// (and a JSON body naming the parameter at fault, as the API does).

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export type Step =
  | { kind: "events"; count: number; end: "cut" | "close" | "hold" | "expire" }
  | { kind: "status"; status: number; error: string; parameter?: string };

export interface Request {
  query: URLSearchParams;
  lastEventIdHeader: string | null;
  resumeFrom: string | null;
}

export function eventId(n: number): string {
  const toid = BigInt(Math.floor(n / 3) + 2) << 32n;
  return `${toid.toString().padStart(19, "0")}-${String(n % 3).padStart(10, "0")}`;
}

export const TOKEN_EXPIRED =
  "the access token has expired: get a new one and reconnect with it, resuming after the last event id received";

function frame(n: number): string {
  const data = {
    id: eventId(n),
    type: "stream.withdrawn",
    ledger: Math.floor(n / 3) + 2,
    streamId: String((n % 5) + 1),
    amount: (10n ** 20n + BigInt(n)).toString(),
  };
  return `id: ${eventId(n)}\nevent: stream.withdrawn\ndata: ${JSON.stringify(data)}\n\n`;
}

export class SseServer {
  readonly requests: Request[] = [];
  private readonly open = new Set<ServerResponse>();
  private readonly server: Server;
  url = "";

  constructor(
    private readonly total: number,
    private readonly plan: (connection: number, request: Request) => Step,
  ) {
    this.server = createServer((req, res) => this.handle(req, res));
  }

  get openConnections(): number {
    return this.open.size;
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    const { port } = this.server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${port}`;
  }

  async stop(): Promise<void> {
    for (const res of this.open) res.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", this.url);
    const header = req.headers["last-event-id"];
    const lastEventIdHeader = typeof header === "string" ? header : null;
    const request: Request = {
      query: url.searchParams,
      lastEventIdHeader,
      resumeFrom: lastEventIdHeader ?? url.searchParams.get("lastEventId"),
    };
    this.requests.push(request);
    const step = this.plan(this.requests.length - 1, request);
    if (url.pathname !== "/events/subscribe") {
      res.writeHead(404, { "content-type": "application/json" }).end('{"error": "not found"}');
      return;
    }
    if (step.kind === "status") {
      res
        .writeHead(step.status, { "content-type": "application/json" })
        .end(JSON.stringify({ error: step.error, parameter: step.parameter ?? null }));
      return;
    }
    this.open.add(res);
    res.on("close", () => this.open.delete(res));
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    res.write("retry: 20\n\n: heartbeat\n\n");
    const ids = Array.from({ length: this.total }, (_, n) => eventId(n));
    let next = request.resumeFrom === null ? 0 : ids.indexOf(request.resumeFrom) + 1;
    const stopAt = Math.min(next + step.count, this.total);
    for (; next < stopAt; next++) {
      res.write(frame(next));
      await new Promise((resolve) => setImmediate(resolve));
      if (res.destroyed) return;
    }
    if (step.end === "hold" || next >= this.total) return; // stay open, quiet
    if (step.end === "expire") {
      res.end(`event: error\ndata: ${JSON.stringify({ error: TOKEN_EXPIRED, status: 401 })}\n\n`);
    } else if (step.end === "cut") {
      res.write(frame(next).slice(0, 30)); // half a frame: must not count as an event
      res.destroy();
    } else {
      res.end();
    }
  }
}
