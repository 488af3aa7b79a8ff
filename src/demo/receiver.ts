import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Webhook } from 'standardwebhooks';
import { formatEventLine } from './event-line.js';
import { closeServer, listenOn } from './http-server.js';

export interface Delivery {
  webhookId: string;
  body: unknown;
  receivedAt: number;
}

export interface DemoReceiverOptions {
  /** Standard Webhooks secret, `whsec_<base64>`. */
  secret: string;
  /** Holds every answer this long (a slow receiver, for tests of shutdown during deliveries). */
  delayMs?: number;
  /** Overrides the status of a verified attempt (e.g. 500 to force the sender to retry). */
  respond?: (ctx: { webhookId: string; attempt: number }) => number | undefined;
  print?: (line: string) => void;
  /** Stamps `receivedAt`; signature freshness is judged by standardwebhooks on the real clock. */
  now?: () => number;
}

// Webhook bodies are small; a cap keeps a runaway sender from filling memory.
const MAX_BODY_BYTES = 1024 * 1024;

/**
 * A webhook receiver as a careful integrator would write one: it verifies every POST with the
 * official standardwebhooks library (signature and timestamp tolerance), and drops duplicates
 * by `webhook-id`, which the watcher keeps stable across redeliveries.
 */
export class DemoReceiver {
  readonly #server: Server;
  readonly #verifier: Webhook;
  readonly #respond: DemoReceiverOptions['respond'];
  readonly #delayMs: number;
  readonly #print: (line: string) => void;
  readonly #now: () => number;
  readonly #deliveries: Delivery[] = [];
  readonly #delivered = new Set<string>();
  /** Verified attempts per webhook-id, accepted or not, for `respond`'s `attempt`. */
  readonly #attemptsById = new Map<string, number>();
  /** Waiting for the n-th delivery: [n, resolve]. */
  readonly #waiters: [number, () => void][] = [];
  #attempts = 0;
  #duplicates = 0;
  #rejected = 0;

  constructor(opts: DemoReceiverOptions) {
    this.#verifier = new Webhook(opts.secret);
    this.#respond = opts.respond;
    this.#delayMs = opts.delayMs ?? 0;
    this.#print = opts.print ?? (() => {});
    this.#now = opts.now ?? Date.now;
    this.#server = createServer((req, res) => {
      // A client that hangs up mid-body leaves nothing to answer.
      this.#handle(req, res).catch(() => res.destroy());
    });
  }

  /** Resolves once `count` distinct webhooks have been accepted (at once if they already were). */
  received(count: number): Promise<void> {
    if (this.#deliveries.length >= count) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push([count, resolve]));
  }

  /** Verified events, the first accepted delivery of each webhook-id only. */
  get deliveries(): readonly Delivery[] {
    return this.#deliveries;
  }

  /** Every POST, valid or not. */
  get attempts(): number {
    return this.#attempts;
  }

  /** Verified, accepted again after a first accepted delivery of the same webhook-id. */
  get duplicates(): number {
    return this.#duplicates;
  }

  /** Refused with 401: missing headers, bad signature, timestamp outside the tolerance. */
  get rejected(): number {
    return this.#rejected;
  }

  /** Accepts POSTs on any path; resolves with `<base>/webhook`, the URL to configure. */
  async listen(port = 0, host = '127.0.0.1'): Promise<string> {
    return `${await listenOn(this.#server, port, host)}/webhook`;
  }

  close(): Promise<void> {
    return closeServer(this.#server);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'POST' }).end();
      return;
    }
    this.#attempts++;
    const raw = await readBody(req);
    if (raw === null) {
      res.writeHead(413).end();
      return;
    }

    const headers = flattenHeaders(req);
    try {
      // Verifies the signature and rejects timestamps more than 5 minutes off (replays).
      this.#verifier.verify(raw, headers, { jsonParse: false });
    } catch {
      this.#rejected++;
      res
        .writeHead(401, { 'content-type': 'application/json' })
        .end('{"error":"invalid signature"}');
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      // Signed with the right key but not JSON: the sender is broken, and a retry will not help.
      res.writeHead(400).end();
      return;
    }

    const webhookId = headers['webhook-id'] ?? '';
    const attempt = (this.#attemptsById.get(webhookId) ?? 0) + 1;
    this.#attemptsById.set(webhookId, attempt);
    const status = this.#respond?.({ webhookId, attempt }) ?? 200;
    // Only an accepted attempt counts as delivered: after a forced 500 the retry is the first delivery.
    if (status >= 200 && status < 300) {
      if (this.#delivered.has(webhookId)) {
        this.#duplicates++;
      } else {
        this.#delivered.add(webhookId);
        this.#deliveries.push({ webhookId, body, receivedAt: this.#now() });
        this.#print(formatEventLine(body));
        for (const waiter of this.#waiters.filter(([n]) => n <= this.#deliveries.length)) {
          this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
          waiter[1]();
        }
      }
    }
    if (this.#delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.#delayMs));
    res.writeHead(status).end();
  }
}

/** The body as text, or null past the cap (still drained, so the 413 reaches the sender). */
async function readBody(req: IncomingMessage): Promise<string | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= MAX_BODY_BYTES) chunks.push(chunk);
  }
  return size > MAX_BODY_BYTES ? null : Buffer.concat(chunks).toString('utf8');
}

function flattenHeaders(req: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (typeof value === 'string') headers[name] = value;
    else if (Array.isArray(value) && value[0] !== undefined) headers[name] = value[0];
  }
  return headers;
}
