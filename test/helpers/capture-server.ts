import { createServer, type IncomingHttpHeaders } from 'node:http';
import { closeServer, listenOn } from '../../src/demo/http-server.js';

export interface CapturedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * A real HTTP server on 127.0.0.1 that records every request and answers with what `reply`
 * returns, for tests that check exactly what went over the wire.
 */
export async function startCaptureServer(
  reply: (
    req: CapturedRequest,
    index: number,
  ) => { status: number; headers?: Record<string, string>; delayMs?: number },
) {
  const requests: CapturedRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const captured = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      requests.push(captured);
      const { status, headers = {}, delayMs = 0 } = reply(captured, requests.length - 1);
      setTimeout(() => {
        if (res.destroyed) return;
        res.writeHead(status, headers);
        res.end();
      }, delayMs);
    });
  });
  const url = await listenOn(server, 0, '127.0.0.1');
  return { url, requests, close: () => closeServer(server) };
}
