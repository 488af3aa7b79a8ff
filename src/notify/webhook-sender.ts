import { RequestError, type Got, type PlainResponse, type Request } from 'got';
import { Webhook } from 'standardwebhooks';
import { USER_AGENT, parseRetryAfter, plainHttp, responseHead } from '../util/http.js';

export type AttemptResult =
  | { kind: 'delivered'; status: number }
  | { kind: 'disabled'; status: number }
  | { kind: 'retry'; reason: string; retryAfterMs: number | null }
  | { kind: 'rejected'; reason: string };

export interface WebhookMessage {
  url: string;
  messageId: string;
  body: string;
  timeoutMs: number;
}

/**
 * The most of a receiver's reply that is read. The status line and headers decide the outcome;
 * the body is read only so that a short one frees the connection for the next delivery.
 */
export const MAX_REPLY_BYTES = 4 * 1024;

/**
 * One signed POST per call, classified by the design's rules: 2xx delivered, 410 disables the
 * receiver, 408/429/5xx/3xx/network errors/timeouts are retried later, other 4xx rejected.
 * The outcome is known once the headers are in: a reply body that is huge or slow cannot
 * fail (or bloat) a delivery.
 */
export class WebhookSender {
  readonly #signer: Webhook;
  readonly #http: Got;
  readonly #now: () => number;

  constructor(secret: string, options: { now?: () => number } = {}) {
    this.#signer = new Webhook(secret);
    this.#now = options.now ?? Date.now;
    this.#http = plainHttp();
  }

  /** Standard Webhooks headers for one attempt; the timestamp is the attempt's own. */
  sign(messageId: string, body: string, at: number): Record<string, string> {
    const timestamp = new Date(at);
    return {
      'webhook-id': messageId,
      'webhook-timestamp': String(Math.floor(at / 1000)),
      'webhook-signature': this.#signer.sign(messageId, timestamp, body),
    };
  }

  async send(message: WebhookMessage): Promise<AttemptResult> {
    const now = this.#now();
    const stream = this.#http.stream.post(message.url, {
      body: message.body,
      headers: {
        'content-type': 'application/json',
        'user-agent': USER_AGENT,
        ...this.sign(message.messageId, message.body, now),
      },
      timeout: { request: message.timeoutMs },
    });
    // Errors after the head (a reply body cut short or too slow) no longer matter.
    let response: PlainResponse;
    try {
      response = await responseHead(stream);
    } catch (error) {
      if (error instanceof RequestError) {
        return { kind: 'retry', reason: error.code || 'ERR_NETWORK', retryAfterMs: null };
      }
      throw error;
    }
    discardReply(stream);
    const status = response.statusCode;
    if (status >= 200 && status < 300) return { kind: 'delivered', status };
    if (status === 410) return { kind: 'disabled', status };
    if (status === 408 || status === 429 || status >= 500 || (status >= 300 && status < 400)) {
      return {
        kind: 'retry',
        reason: `HTTP ${status}`,
        retryAfterMs: parseRetryAfter(response.headers['retry-after'], now, 24 * 60 * 60 * 1000),
      };
    }
    return { kind: 'rejected', reason: `HTTP ${status}` };
  }
}

/**
 * Reads the reply in the background and drops it: up to MAX_REPLY_BYTES, so that a short one
 * ends and its keep-alive connection is reused; past that the connection is closed. A body
 * that never ends is cut by the request timeout.
 */
function discardReply(stream: Request): void {
  let read = 0;
  stream.on('data', (chunk: Buffer) => {
    read += chunk.length;
    if (read > MAX_REPLY_BYTES) stream.destroy();
  });
}
