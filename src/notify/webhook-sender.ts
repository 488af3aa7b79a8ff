import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import got, { RequestError, type Got } from 'got';
import { Webhook } from 'standardwebhooks';
import { parseRetryAfter } from '../dataframer/errors.js';

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
 * One signed POST per call, classified by the design's rules: 2xx delivered, 410 disables the
 * receiver, 408/429/5xx/3xx/network errors/timeouts are retried later, other 4xx rejected.
 */
export class WebhookSender {
  readonly #signer: Webhook;
  readonly #http: Got;
  readonly #now: () => number;

  constructor(secret: string, options: { now?: () => number } = {}) {
    this.#signer = new Webhook(secret);
    this.#now = options.now ?? Date.now;
    this.#http = got.extend({
      retry: { limit: 0 },
      throwHttpErrors: false,
      followRedirect: false,
      agent: {
        http: new HttpAgent({ keepAlive: true }),
        https: new HttpsAgent({ keepAlive: true }),
      },
    });
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
    let status: number;
    let retryAfter: string | undefined;
    try {
      const response = await this.#http.post(message.url, {
        body: message.body,
        headers: {
          'content-type': 'application/json',
          'user-agent': 'dataframer-run-watcher',
          ...this.sign(message.messageId, message.body, now),
        },
        timeout: { request: message.timeoutMs },
      });
      status = response.statusCode;
      retryAfter = response.headers['retry-after'];
    } catch (error) {
      if (error instanceof RequestError) {
        return { kind: 'retry', reason: error.code || 'ERR_NETWORK', retryAfterMs: null };
      }
      throw error;
    }
    if (status >= 200 && status < 300) return { kind: 'delivered', status };
    if (status === 410) return { kind: 'disabled', status };
    if (status === 408 || status === 429 || status >= 500 || (status >= 300 && status < 400)) {
      return {
        kind: 'retry',
        reason: `HTTP ${status}`,
        retryAfterMs: parseRetryAfter(retryAfter, now, 24 * 60 * 60 * 1000),
      };
    }
    return { kind: 'rejected', reason: `HTTP ${status}` };
  }
}

/** A receiver URL as it may appear in logs and metrics: no credentials, no query string. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return '(invalid url)';
  }
}
