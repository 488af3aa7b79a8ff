import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { LIMITS, RunId } from '../config/schema.js';
import type { Delivery } from '../domain/delivery.js';
import { NotReplayableError, type DeliveryWorker } from '../notify/delivery-worker.js';
import type { Store } from '../store/store.js';
import type { AddResult, Watcher } from '../watch/watcher.js';
import { OPENAPI } from './openapi.js';
import { deliveryView, runDetail, runItem } from './views.js';

const MAX_BODY_BYTES = 1024 * 1024;

export interface RunApiDeps {
  adminToken: string;
  watcher: Pick<Watcher, 'addRun' | 'removeRun' | 'activeRun'>;
  store: Pick<Store, 'listRuns' | 'getRun' | 'deliveriesOf' | 'deliveriesOfRuns'>;
  worker: Pick<DeliveryWorker, 'replay'>;
  now: () => number;
}

/** An answer other than 2xx, in the one error shape of docs/api.md. */
class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly field: string | null;
  constructor(status: number, code: string, message: string, field: string | null = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

const ListQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(LIMITS.runsPerPage).default(100),
  cursor: z.string().max(200).optional(),
  state: z.enum(['active', 'finished']).optional(),
  status: z.string().min(1).max(64).optional(),
});
const AddRuns = z.strictObject({
  run_ids: z.array(RunId).min(1).max(LIMITS.runsPerCall),
});
const Cursor = z.tuple([z.number(), z.string()]);

/** The run API (docs/api.md): a handler for every request under `/api/`. */
export function createRunApi(deps: RunApiDeps) {
  const expected = digest(deps.adminToken);
  return async (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> => {
    try {
      if (path === '/api/openapi.json' && req.method === 'GET') return send(res, 200, OPENAPI);
      // Both sides hashed to fixed-length digests: the comparison takes the same time whatever
      // the token's length or content, and a length mismatch cannot throw.
      const given = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
      if (!timingSafeEqual(digest(given), expected))
        throw new ApiError(
          401,
          'unauthorized',
          'a valid "Authorization: Bearer <ADMIN_TOKEN>" is required',
        );
      const { status, body } = await route(deps, req, path);
      send(res, status, body);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      send(res, error.status, {
        error: {
          code: error.code,
          message: error.message,
          ...(error.field ? { field: error.field } : {}),
        },
      });
    }
  };
}

async function route(
  deps: RunApiDeps,
  req: IncomingMessage,
  path: string,
): Promise<{ status: number; body: unknown }> {
  const url = new URL(req.url ?? '/', 'http://watcher');
  const method = req.method ?? 'GET';
  if (path === '/api/runs') {
    if (method === 'GET') return { status: 200, body: listRuns(deps, url.searchParams) };
    if (method === 'POST') return { status: 200, body: addRuns(deps, await readJson(req)) };
    throw methodNotAllowed(method);
  }
  const run = /^\/api\/runs\/([^/]+)$/.exec(path);
  if (run) {
    const runId = parse(RunId, pathSegment(run[1]!, 'run_id'), 'run_id');
    if (method === 'GET') return { status: 200, body: showRun(deps, runId) };
    if (method === 'DELETE') {
      if (!deps.watcher.removeRun(runId)) throw notFound(`run ${runId} is not watched`);
      return { status: 200, body: { run_id: runId, removed: true } };
    }
    throw methodNotAllowed(method);
  }
  const replay = /^\/api\/deliveries\/([^/]+)\/replay$/.exec(path);
  if (replay) {
    if (method !== 'POST') throw methodNotAllowed(method);
    return { status: 200, body: replayDelivery(deps, pathSegment(replay[1]!, 'delivery_id')) };
  }
  throw notFound(`no such path: ${path}`);
}

function listRuns(deps: RunApiDeps, params: URLSearchParams) {
  const query = parse(ListQuery, Object.fromEntries(params), null);
  const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
  const page = deps.store.listRuns({
    limit: query.limit + 1,
    ...(after ? { after } : {}),
    ...(query.state ? { state: query.state } : {}),
    ...(query.status ? { status: query.status } : {}),
  });
  const more = page.length > query.limit;
  const records = page.slice(0, query.limit).map((r) => deps.watcher.activeRun(r.runId) ?? r);
  const deliveries = deps.store.deliveriesOfRuns(records.map((r) => r.runId));
  const now = deps.now();
  const runs = records.map((r) => runItem(r, deliveries.get(r.runId) ?? [], now));
  const last = page[query.limit - 1];
  return { runs, next_cursor: more && last ? encodeCursor(last.addedAt, last.runId) : null };
}

function showRun(deps: RunApiDeps, runId: string) {
  const record = deps.watcher.activeRun(runId) ?? deps.store.getRun(runId);
  if (!record) throw notFound(`run ${runId} is not known`);
  return runDetail(record, deps.store.deliveriesOf(runId), deps.now());
}

function addRuns(deps: RunApiDeps, body: unknown) {
  const { run_ids: runIds } = parse(AddRuns, body, null);
  const answer: Record<AddResult, string[]> = {
    added: [],
    already_watched: [],
    already_finished: [],
  };
  for (const runId of new Set(runIds)) answer[deps.watcher.addRun(runId, 'api')].push(runId);
  return answer;
}

function replayDelivery(deps: RunApiDeps, deliveryId: string) {
  let delivery: Delivery | null;
  try {
    delivery = deps.worker.replay(deliveryId);
  } catch (error) {
    if (error instanceof NotReplayableError) throw new ApiError(409, 'conflict', error.message);
    throw error;
  }
  if (!delivery) throw notFound(`delivery ${deliveryId} is not known`);
  return deliveryView(delivery);
}

/** The request body as JSON: at most MAX_BODY_BYTES, and declared as JSON. */
async function readJson(req: IncomingMessage): Promise<unknown> {
  if (!/^application\/json\b/i.test(req.headers['content-type'] ?? ''))
    throw new ApiError(415, 'unsupported_media_type', 'the body must be application/json');
  if (Number(req.headers['content-length']) > MAX_BODY_BYTES) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw tooLarge();
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new ApiError(400, 'invalid_request', 'the body is not valid JSON', 'body');
  }
}

/** `value` as `schema` says, or a 400 naming the first field that is wrong. */
function parse<T>(schema: z.ZodType<T>, value: unknown, name: string | null): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const field =
    [
      name,
      ...issue.path.map((part) => (typeof part === 'number' ? `[${part}]` : `.${String(part)}`)),
    ]
      .filter((part) => part !== null)
      .join('')
      .replace(/^\./, '') || 'body';
  throw new ApiError(400, 'invalid_request', `${field}: ${issue.message}`, field);
}

/** A path segment decoded, or a 400 naming it when its escapes are broken (`%E0`). */
function pathSegment(segment: string, field: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new ApiError(400, 'invalid_request', `${field}: not a valid URL path segment`, field);
  }
}

const encodeCursor = (addedAt: number, runId: string) =>
  Buffer.from(JSON.stringify([addedAt, runId])).toString('base64url');

function decodeCursor(cursor: string): { addedAt: number; runId: string } {
  try {
    const [addedAt, runId] = Cursor.parse(JSON.parse(Buffer.from(cursor, 'base64url').toString()));
    return { addedAt, runId };
  } catch {
    throw new ApiError(400, 'invalid_request', 'cursor: not a cursor this API gave', 'cursor');
  }
}

const digest = (text: string) => createHash('sha256').update(text).digest();
const notFound = (message: string) => new ApiError(404, 'not_found', message);
const tooLarge = () =>
  new ApiError(413, 'payload_too_large', `the body is larger than ${MAX_BODY_BYTES} bytes`);
const methodNotAllowed = (method: string) =>
  new ApiError(405, 'method_not_allowed', `${method} is not allowed here`);

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}
