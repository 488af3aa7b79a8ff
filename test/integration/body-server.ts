import { createServer, type IncomingMessage } from 'node:http';
import { closeServer, listenOn } from '../../src/demo/http-server.js';

/** How one request is answered: a status, headers, and a body sent as a stream. */
export interface BodyPlan {
  status: number;
  headers?: Record<string, string>;
  /** Sent first (JSON-looking text, say). */
  prefix?: string;
  /** Filler bytes after the prefix, sent as fast as the client reads; 0 for none. */
  fillBytes?: number;
  /** Leave the body open after what was sent (a slow or stuck sender). */
  hang?: boolean;
}

export interface Answered {
  /** Bytes the server managed to hand to the socket before the body ended or the client left. */
  sent: number;
  /** Resolves when the connection of this answer closed. */
  closed: Promise<void>;
}

// One reused chunk: the server offers hundreds of MB without holding them.
const CHUNK = Buffer.alloc(64 * 1024, 'x');

/**
 * A real HTTP server on 127.0.0.1 port 0 that streams huge, endless or stuck bodies with
 * backpressure, for tests of how much of an answer a client reads.
 */
export async function startBodyServer(plan: (req: IncomingMessage) => BodyPlan) {
  const answers: Answered[] = [];
  const server = createServer((req, res) => {
    req.resume();
    const { status, headers = {}, prefix = '', fillBytes = 0, hang = false } = plan(req);
    let resolveClosed: () => void = () => {};
    const answer: Answered = {
      sent: 0,
      closed: new Promise<void>((resolve) => (resolveClosed = resolve)),
    };
    answers.push(answer);
    res.on('close', () => resolveClosed());
    res.writeHead(status, headers);
    res.write(prefix);
    answer.sent += Buffer.byteLength(prefix);
    let left = fillBytes;
    const pump = () => {
      while (left > 0 && !res.destroyed) {
        const chunk = left >= CHUNK.length ? CHUNK : CHUNK.subarray(0, left);
        left -= chunk.length;
        answer.sent += chunk.length;
        if (!res.write(chunk)) {
          res.once('drain', pump);
          return;
        }
      }
      if (left === 0 && !hang && !res.destroyed) res.end();
    };
    pump();
  });
  const url = await listenOn(server, 0, '127.0.0.1');
  return { url, answers, close: () => closeServer(server) };
}

export const MB = 1024 * 1024;
