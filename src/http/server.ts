import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Readiness {
  ready: boolean;
  reasons: string[];
}

export interface HttpSurface {
  readiness: () => Readiness;
  /** Prometheus text exposition; absent until metrics are wired. */
  metrics?: () => Promise<{ contentType: string; body: string }>;
  /** Everything under `/api/` (the run API), when it is turned on. */
  api?: (req: IncomingMessage, res: ServerResponse, path: string) => Promise<void>;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

async function handle(
  surface: HttpSurface,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const path = (req.url ?? '/').split('?')[0] ?? '/';
  if (path.startsWith('/api/')) {
    if (surface.api) return surface.api(req, res, path);
    // Off without ADMIN_TOKEN (docs/api.md): not there, whatever the method.
    return send(res, 404, { error: 'not found' });
  }
  if (req.method !== 'GET' && req.method !== 'HEAD')
    return send(res, 405, { error: 'method not allowed' });
  if (path === '/healthz') return send(res, 200, { status: 'ok' });
  if (path === '/readyz') {
    const { ready, reasons } = surface.readiness();
    return send(res, ready ? 200 : 503, { status: ready ? 'ready' : 'not_ready', reasons });
  }
  if (path === '/metrics' && surface.metrics) {
    const { contentType, body } = await surface.metrics();
    res.writeHead(200, { 'content-type': contentType });
    res.end(body);
    return;
  }
  send(res, 404, { error: 'not found' });
}

/** Health, readiness and metrics. Keep-alive sockets are closed on stop so they never hold shutdown. */
export async function startHttpServer(
  surface: HttpSurface,
  host: string,
  port: number,
): Promise<{ server: Server; port: number; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    handle(surface, req, res).catch(() => send(res, 500, { error: 'internal error' }));
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  server.unref();
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
