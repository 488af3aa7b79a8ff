import type { ServerResponse } from 'node:http';
import { breakSchema, type FaultDraw } from './faults.js';

/** What the simulator sends for one request: a reply, or a dropped connection. */
export type Answer =
  | { kind: 'reset' }
  | {
      kind: 'reply';
      status: number;
      contentType: string;
      text: string;
      headers: Record<string, string>;
      /** The reply carries the run (maybe malformed or broken), not an error. */
      servesRun: boolean;
    };

const JSON_TYPE = 'application/json';

export function jsonReply(
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
  servesRun = false,
): Answer {
  return {
    kind: 'reply',
    status,
    contentType: JSON_TYPE,
    text: JSON.stringify(body),
    headers,
    servesRun,
  };
}

/** The answer for a run body once the fault draw is known; pure, so each fault is easy to test. */
export function answerFor(
  body: Record<string, unknown> | Record<string, unknown>[],
  draw: FaultDraw,
  retryAfterSeconds: number,
): Answer {
  const retryAfter = String(retryAfterSeconds);
  switch (draw.kind) {
    case 'reset':
      // No status line at all: the client sees ECONNRESET / "socket hang up".
      return { kind: 'reset' };
    case 'server_error': {
      const pick = draw.detail * 3;
      if (pick < 1) return jsonReply(500, { detail: 'A server error occurred.' });
      if (pick < 2) {
        // Gateways answer in HTML, not JSON: the client must not assume a JSON error body.
        const text = '<html><body><h1>502 Bad Gateway</h1></body></html>';
        return {
          kind: 'reply',
          status: 502,
          contentType: 'text/html',
          text,
          headers: {},
          servesRun: false,
        };
      }
      // Only some 503s say when to come back, as with real load balancers.
      const headers: Record<string, string> = pick % 1 < 0.5 ? { 'retry-after': retryAfter } : {};
      return jsonReply(503, { detail: 'Service temporarily unavailable.' }, headers);
    }
    case 'rate_limit':
      return jsonReply(
        429,
        { detail: `Request was throttled. Expected available in ${retryAfter} seconds.` },
        { 'retry-after': retryAfter },
      );
    case 'malformed': {
      // A body cut short (a proxy timing out mid-stream): a strict prefix of an object never parses.
      const text = JSON.stringify(body);
      const cut = text.slice(0, Math.floor(text.length * (0.2 + 0.6 * draw.detail)));
      return {
        kind: 'reply',
        status: 200,
        contentType: JSON_TYPE,
        text: cut,
        headers: {},
        servesRun: true,
      };
    }
    case 'schema_break': {
      if (!Array.isArray(body)) return jsonReply(200, breakSchema(body, draw.detail), {}, true);
      // In a list, one item breaks: the client must skip it, not the whole list.
      const broken = Math.floor(draw.detail * body.length);
      const items = body.map((item, i) => (i === broken ? breakSchema(item, draw.detail) : item));
      return jsonReply(200, items, {}, true);
    }
    case null:
      return jsonReply(200, body, {}, true);
  }
}

/** Writes a reply with an exact content-length, unless the client has gone meanwhile. */
export function writeReply(res: ServerResponse, answer: Extract<Answer, { kind: 'reply' }>): void {
  if (res.destroyed) return;
  res.writeHead(answer.status, {
    'content-type': answer.contentType,
    'content-length': Buffer.byteLength(answer.text),
    ...answer.headers,
  });
  res.end(answer.text);
}
