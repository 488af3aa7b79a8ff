import { z } from 'zod';
import { HttpUrl, LIMITS, RunId } from '../config/schema.js';
import { DELIVERY_STATES } from '../domain/delivery.js';
import { FINISH_TYPES, RUN_SOURCES } from '../domain/run.js';
import { redactUrl } from '../util/http.js';
import { clip } from '../util/text.js';
import { UsageError } from './deliveries.js';

export const DEFAULT_WATCHER_URL = 'http://127.0.0.1:8080';
export const REQUEST_TIMEOUT_MS = 10_000;

export const RUNS_USAGE = [
  'usage: dataframer-run-watcher runs add <run-id>...',
  '       dataframer-run-watcher runs remove <run-id>',
  '       dataframer-run-watcher runs list [--json] [--state active|finished] [--status <status>]',
  '       dataframer-run-watcher runs show <run-id> [--json]',
  `Talks to the watcher at WATCHER_URL (default ${DEFAULT_WATCHER_URL}) with ADMIN_TOKEN.`,
  'Exit codes: 0 done, 64 bad command line, 69 watcher not reachable, 77 ADMIN_TOKEN missing',
  'or refused, 70 anything else. See docs/api.md.',
].join('\n');

/** A usage error stays one line: the full usage is one `runs --help` away. */
const usage = (problem: string) =>
  new UsageError(`${problem}; usage: runs add|remove|list|show ... (runs --help)`);

/** Exit 69: no answer from the watcher at all. */
export class WatcherUnreachableError extends Error {}
/** Exit 77: ADMIN_TOKEN is missing, or the watcher refused it. */
export class NoPermissionError extends Error {}
/** Exit 70: the watcher answered, but with an error or with a body not of the documented shape. */
export class WatcherAnswerError extends Error {}

// What the watcher answers (docs/api.md), checked before anything is shown: a wrong body is
// an error naming the field, never a table of `undefined`. Unknown fields are allowed.
const Time = z.iso.datetime({ offset: true });
const Count = z.int().nonnegative();
const RunFields = {
  run_id: z.guid(),
  source: z.enum(RUN_SOURCES),
  status: z.string().nullable(),
  samples_completed: Count.nullable(),
  samples_failed: Count.nullable(),
  number_of_samples: Count.nullable(),
  percent: Count.nullable(),
  total_cost: z.number().nullable(),
  added_at: Time,
  last_polled_at: Time.nullable(),
  next_poll_at: Time.nullable(),
  predicted_end: z.object({ earliest: Time, latest: Time }).nullable(),
  outcome: z.enum(FINISH_TYPES).nullable(),
  finished_at: Time.nullable(),
};
const DeliveryState = z.enum(DELIVERY_STATES);
const RunListItem = z.object({
  ...RunFields,
  deliveries: z.array(z.object({ receiver: z.string(), state: DeliveryState, attempts: Count })),
});
const RunPage = z.object({ runs: z.array(z.unknown()), next_cursor: z.string().min(1).nullable() });
/** The snapshot is the DataFramer API's own answer: only the fields shown are checked. */
const Snapshot = z.object({
  spec_id: z.string().nullish(),
  spec_name: z.string().nullish(),
  spec_version: z.int().nullish(),
  dataset_id: z.string().nullish(),
  dataset_name: z.string().nullish(),
  created_at: z.string().nullish(),
  completed_at: z.string().nullish(),
  generated_files: z.array(z.unknown()).nullish(),
  generated_files_total: Count.nullish(),
});
const RunDetail = z.object({
  ...RunFields,
  snapshot: Snapshot.nullable(),
  deliveries: z.array(
    z.object({
      delivery_id: z.string(),
      webhook_id: z.string(),
      receiver: z.string(),
      state: DeliveryState,
      attempts: Count,
      last_error: z.string().nullable(),
      next_attempt_at: Time.nullable(),
    }),
  ),
});
const AddResult = z.object({
  added: z.array(z.guid()),
  already_watched: z.array(z.guid()),
  already_finished: z.array(z.guid()),
});
const RemoveResult = z.object({ run_id: z.guid(), removed: z.literal(true) });
const ApiError = z.object({
  error: z.object({ code: z.string(), message: z.string(), field: z.string().nullish() }),
});

type RunListItem = z.infer<typeof RunListItem>;
type RunDetail = z.infer<typeof RunDetail>;

type Command =
  | { verb: 'help' }
  | { verb: 'add'; ids: string[] }
  | { verb: 'remove'; id: string }
  | { verb: 'list'; json: boolean; state: string | null; status: string | null }
  | { verb: 'show'; id: string; json: boolean };

/** Splits `--flag value` / `--flag=value` / `--flag` from positionals, knowing each verb's flags. */
function parseOptions(
  verb: string,
  args: readonly string[],
  flags: readonly string[],
  valued: readonly string[],
): { positional: string[]; options: Map<string, string> } {
  const positional: string[] = [];
  const options = new Map<string, string>();
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i]!;
    if (!arg.startsWith('-')) {
      positional.push(arg);
      continue;
    }
    const [name, inline] = arg.includes('=')
      ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)]
      : [arg, undefined];
    if (flags.includes(name) && inline === undefined) options.set(name, '');
    else if (valued.includes(name)) {
      const value = inline ?? args[(i += 1)];
      if (value === undefined || value === '') throw usage(`${name} needs a value`);
      options.set(name, value);
    } else throw usage(`unknown option ${JSON.stringify(clip(arg, 40))} for runs ${verb}`);
  }
  return { positional, options };
}

/** A run ID from the command line, lower-cased as the watcher keeps it. */
function runId(arg: string): string {
  const parsed = RunId.safeParse(arg);
  if (!parsed.success) throw usage(`run ID ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  return parsed.data;
}

function oneRunId(verb: string, positional: readonly string[]): string {
  if (positional.length !== 1)
    throw usage(`runs ${verb} takes one run ID, got ${positional.length}`);
  return runId(positional[0]!);
}

function parseCommand(args: readonly string[]): Command {
  const [verb, ...rest] = args;
  if (verb === undefined) throw usage('runs needs a subcommand');
  if (verb === 'help' || verb === '--help' || verb === '-h') return { verb: 'help' };
  if (verb === 'add') {
    const { positional } = parseOptions(verb, rest, [], []);
    if (positional.length === 0) throw usage('runs add needs at least one run ID');
    // All checked before anything is sent: one bad ID adds none.
    return { verb, ids: [...new Set(positional.map(runId))] };
  }
  if (verb === 'remove') {
    const { positional } = parseOptions(verb, rest, [], []);
    return { verb, id: oneRunId(verb, positional) };
  }
  if (verb === 'list') {
    const { positional, options } = parseOptions(verb, rest, ['--json'], ['--state', '--status']);
    if (positional.length > 0) throw usage('runs list takes no run ID (runs show <run-id>)');
    const state = options.get('--state') ?? null;
    if (state !== null && state !== 'active' && state !== 'finished')
      throw usage(`--state must be active or finished, got ${JSON.stringify(clip(state, 40))}`);
    return { verb, json: options.has('--json'), state, status: options.get('--status') ?? null };
  }
  if (verb === 'show') {
    const { positional, options } = parseOptions(verb, rest, ['--json'], []);
    return { verb, id: oneRunId(verb, positional), json: options.has('--json') };
  }
  throw usage(`unknown subcommand ${JSON.stringify(clip(verb, 40))}`);
}

interface Watcher {
  /** The base URL, ending in `/`, so a WATCHER_URL with a path prefix keeps it. */
  base: URL;
  /** The base URL as messages show it: no credentials, no query. */
  shown: string;
  token: string;
  timeoutMs: number;
}

function watcherFrom(env: Readonly<Record<string, string | undefined>>, timeoutMs: number) {
  const raw = env['WATCHER_URL'] || DEFAULT_WATCHER_URL;
  const checked = HttpUrl.safeParse(raw);
  if (!checked.success)
    throw new UsageError(`WATCHER_URL ${checked.error.issues[0]?.message ?? 'is invalid'}`);
  const base = new URL(checked.data);
  // fetch refuses a URL with credentials; the watcher's credential is the bearer token.
  if (base.username !== '' || base.password !== '')
    throw new UsageError('WATCHER_URL must not hold credentials; the token goes in ADMIN_TOKEN');
  base.search = '';
  base.hash = '';
  if (!base.pathname.endsWith('/')) base.pathname += '/';
  const token = env['ADMIN_TOKEN'];
  if (token === undefined || token === '')
    throw new NoPermissionError(
      "ADMIN_TOKEN is not set: the runs command needs the watcher's admin token",
    );
  // fetch would quote an invalid header value in its error, and so print the token.
  if (!/^[\x21-\x7e]+$/.test(token))
    throw new NoPermissionError(
      'ADMIN_TOKEN holds spaces or characters an HTTP header cannot carry',
    );
  // The watcher refuses shorter ones (docs/api.md); and a long token is never mistaken for
  // ordinary text when messages are scrubbed of it.
  if (token.length < LIMITS.adminTokenChars)
    throw new NoPermissionError(
      `ADMIN_TOKEN is shorter than the ${LIMITS.adminTokenChars} characters the watcher requires`,
    );
  return { base, shown: redactUrl(base.href), token, timeoutMs } satisfies Watcher;
}

/**
 * Text from the watcher (and through it from the DataFramer API) as a terminal may show it:
 * control and format characters could move the cursor, recolour the screen or reorder text.
 */
function printable(text: string, max = 1_000): string {
  return clip(text.replace(/[\p{Cc}\p{Cf}]/gu, '?'), max);
}

/** A property of a thrown value, read by shape: fetch's errors may come from another realm. */
function property(value: unknown, key: string): unknown {
  return typeof value === 'object' && value !== null
    ? (value as Record<string, unknown>)[key]
    : undefined;
}

function unreachable(watcher: Watcher, error: unknown): WatcherUnreachableError {
  // fetch's own message is only "fetch failed"; its cause says what (ECONNREFUSED, ENOTFOUND,
  // a port fetch refuses to use, …).
  const causeMessage = property(property(error, 'cause'), 'message');
  const message = property(error, 'message');
  const why =
    property(error, 'name') === 'TimeoutError'
      ? `no answer within ${watcher.timeoutMs / 1000} s`
      : typeof causeMessage === 'string'
        ? causeMessage
        : typeof message === 'string'
          ? message
          : String(error);
  return new WatcherUnreachableError(`watcher not reachable at ${watcher.shown} (${why})`);
}

/** Names the first field of an answer that is not as docs/api.md describes it. */
function notDocumented(what: string, error: z.ZodError, prefix: string): WatcherAnswerError {
  const issue = error.issues[0];
  const where = [prefix, ...(issue?.path ?? []).map(String)].filter(Boolean).join('.');
  const why = printable(issue?.message ?? 'invalid', 200);
  return new WatcherAnswerError(
    `the watcher's answer to ${what} is not the documented shape (${where ? `${where}: ` : ''}${why})`,
  );
}

/** One request to the run API; resolves with the JSON of a 2xx answer, checked by `schema`. */
async function call<T>(
  watcher: Watcher,
  request: { method: string; path: string; query?: URLSearchParams; body?: unknown },
  schema: z.ZodType<T>,
): Promise<{ data: T; json: unknown }> {
  const url = new URL(request.path, watcher.base);
  if (request.query) url.search = request.query.toString();
  const what = `${request.method} ${url.pathname}`;
  let status: number;
  let text: string;
  try {
    const response = await fetch(url, {
      method: request.method,
      headers: {
        authorization: `Bearer ${watcher.token}`,
        accept: 'application/json',
        ...(request.body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: request.body === undefined ? null : JSON.stringify(request.body),
      // Never carry the token to wherever a redirect points; a 3xx is an answer like any other.
      redirect: 'manual',
      // Covers the body too: a watcher that stops halfway does not hang the command.
      signal: AbortSignal.timeout(watcher.timeoutMs),
    });
    status = response.status;
    text = await response.text();
  } catch (error) {
    throw unreachable(watcher, error);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (status === 401)
    throw new NoPermissionError(`the watcher at ${watcher.shown} refused ADMIN_TOKEN (401)`);
  if (status < 200 || status > 299) {
    const apiError = ApiError.safeParse(json);
    const detail = apiError.success
      ? printable(apiError.data.error.message, 300)
      : `HTTP ${status}`;
    // With ADMIN_TOKEN unset on the watcher, every /api/ path is a 404 (docs/api.md).
    const hint =
      status === 404 && request.path === 'api/runs'
        ? '; is ADMIN_TOKEN set on the watcher? Without it the run API is off'
        : '';
    throw new WatcherAnswerError(`the watcher answered ${status} to ${what}: ${detail}${hint}`);
  }
  if (json === undefined)
    throw new WatcherAnswerError(`the watcher's answer to ${what} (${status}) is not JSON`);
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw notDocumented(what, parsed.error, '');
  return { data: parsed.data, json };
}

/** Every run the filters select, following `next_cursor`; each as checked and as sent. */
async function listRuns(
  watcher: Watcher,
  filters: { state: string | null; status: string | null },
): Promise<{ runs: RunListItem[]; raw: unknown[] }> {
  const runs: RunListItem[] = [];
  const raw: unknown[] = [];
  const seen = new Set<string>();
  let cursor: string | null = null;
  do {
    const query = new URLSearchParams({ limit: String(LIMITS.runsPerPage) });
    if (filters.state !== null) query.set('state', filters.state);
    if (filters.status !== null) query.set('status', filters.status);
    if (cursor !== null) query.set('cursor', cursor);
    const { data } = await call(watcher, { method: 'GET', path: 'api/runs', query }, RunPage);
    data.runs.forEach((item, index) => {
      // Each run checked on its own, so the message names which one is wrong.
      const parsed = RunListItem.safeParse(item);
      if (!parsed.success) throw notDocumented('GET /api/runs', parsed.error, `runs.${index}`);
      runs.push(parsed.data);
      raw.push(item);
    });
    cursor = data.next_cursor;
    // A cursor that comes back would page forever.
    if (cursor !== null && seen.has(cursor))
      throw new WatcherAnswerError('the watcher sent the cursor of an earlier page again');
    if (cursor !== null) seen.add(cursor);
  } while (cursor !== null);
  return { runs, raw };
}

const dash = (value: string | null | undefined) =>
  value === null || value === undefined || value === '' ? '-' : value;

/** `done/total (percent%)`, done counting failed samples as the API's `percent` does. */
function progress(run: RunListItem | RunDetail): string {
  if (run.samples_completed === null && run.samples_failed === null) return '-';
  const done = (run.samples_completed ?? 0) + (run.samples_failed ?? 0);
  const total = run.number_of_samples === null ? '?' : String(run.number_of_samples);
  return run.percent === null ? `${done}/${total}` : `${done}/${total} (${run.percent}%)`;
}

const cost = (value: number | null) => (value === null ? '-' : value.toFixed(2));
/** `2026-12-02 10:00`: minutes are enough in a table, and the header says UTC. */
const minute = (iso: string) => new Date(iso).toISOString().slice(0, 16).replace('T', ' ');
const outcome = (value: string | null) => (value === null ? '-' : value.replace(/^run\./, ''));

/** Columns padded to their widest cell; the run ID is never cut, since `show` needs it. */
function table(rows: readonly string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows.map((row) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
}

function runTable(runs: readonly RunListItem[]): string[] {
  if (runs.length === 0) return ['no runs'];
  return table([
    ['RUN ID', 'SOURCE', 'STATUS', 'PROGRESS', 'COST', 'ADDED (UTC)', 'OUTCOME'],
    ...runs.map((run) => [
      run.run_id,
      run.source,
      run.status === null ? '-' : printable(run.status, 12),
      progress(run),
      cost(run.total_cost),
      minute(run.added_at),
      outcome(run.outcome),
    ]),
  ]);
}

function runBlock(run: RunDetail): string[] {
  const line = (label: string, value: string) => `${label.padEnd(12)} ${value}`;
  const counts =
    run.samples_completed === null && run.samples_failed === null
      ? ''
      : `: ${run.samples_completed ?? 0} completed, ${run.samples_failed ?? 0} failed`;
  const lines = [
    line('run', run.run_id),
    line('source', run.source),
    line('status', run.status === null ? '- (not polled yet)' : printable(run.status, 64)),
    line('progress', `${progress(run)}${counts}`),
    line('cost', cost(run.total_cost)),
    line('added', run.added_at),
    line('last poll', dash(run.last_polled_at)),
    line('next poll', dash(run.next_poll_at)),
    line(
      'predicted',
      run.predicted_end === null
        ? '-'
        : `${run.predicted_end.earliest} to ${run.predicted_end.latest}`,
    ),
    line('outcome', dash(run.outcome)),
    line('finished', dash(run.finished_at)),
  ];
  const snap = run.snapshot;
  if (snap === null) lines.push(line('snapshot', '- (not polled yet)'));
  else {
    const text = (value: string | null | undefined) =>
      value === null || value === undefined ? '-' : printable(value, 200);
    const id = (value: string | null | undefined) =>
      value === null || value === undefined ? '' : ` (${printable(value, 80)})`;
    const version = typeof snap.spec_version === 'number' ? ` v${snap.spec_version}` : '';
    const files = snap.generated_files_total ?? snap.generated_files?.length ?? 0;
    lines.push(
      'snapshot',
      line('  spec', `${text(snap.spec_name)}${version}${id(snap.spec_id)}`),
      line('  dataset', `${text(snap.dataset_name)}${id(snap.dataset_id)}`),
      line('  created', text(snap.created_at)),
      line('  completed', text(snap.completed_at)),
      line('  files', String(files)),
    );
  }
  if (run.deliveries.length === 0) lines.push(line('deliveries', 'none'));
  for (const d of run.deliveries) {
    lines.push(
      line(
        'delivery',
        `${printable(d.delivery_id, 80)} ${d.state}, ${d.attempts} attempt${d.attempts === 1 ? '' : 's'}`,
      ),
      line('  receiver', printable(d.receiver, 300)),
      line('  webhook-id', printable(d.webhook_id, 80)),
    );
    if (d.last_error !== null) lines.push(line('  last error', printable(d.last_error, 300)));
    if (d.next_attempt_at !== null) lines.push(line('  next try', d.next_attempt_at));
  }
  return lines;
}

/**
 * `runs add|remove|list|show`: the run API (docs/api.md) for people, against a running watcher.
 * Unlike `deliveries` it opens no state and loads no config: WATCHER_URL and ADMIN_TOKEN are all
 * it reads. Throws UsageError (64), WatcherUnreachableError (69), NoPermissionError (77) or
 * WatcherAnswerError (70); the token is sent, never written.
 */
export async function runRunsCommand(
  args: readonly string[],
  write: (line: string) => void,
  env: Readonly<Record<string, string | undefined>>,
  timeoutMs = REQUEST_TIMEOUT_MS,
): Promise<void> {
  const command = parseCommand(args);
  if (command.verb === 'help') {
    write(RUNS_USAGE);
    return;
  }
  const watcher = watcherFrom(env, timeoutMs);

  if (command.verb === 'add') {
    for (let i = 0; i < command.ids.length; i += LIMITS.runsPerCall) {
      const { data } = await call(
        watcher,
        {
          method: 'POST',
          path: 'api/runs',
          body: { run_ids: command.ids.slice(i, i + LIMITS.runsPerCall) },
        },
        AddResult,
      );
      for (const id of data.added) write(`added             ${id}`);
      for (const id of data.already_watched) write(`already watched   ${id}`);
      for (const id of data.already_finished)
        write(`already finished  ${id} (not watched again; replay its deliveries to resend)`);
    }
  } else if (command.verb === 'remove') {
    const { data } = await call(
      watcher,
      { method: 'DELETE', path: `api/runs/${command.id}` },
      RemoveResult,
    );
    write(`removed ${data.run_id}`);
  } else if (command.verb === 'list') {
    const { runs, raw } = await listRuns(watcher, command);
    if (command.json) write(JSON.stringify(raw, null, 2));
    else runTable(runs).forEach((line) => write(line));
  } else {
    const { data, json } = await call(
      watcher,
      { method: 'GET', path: `api/runs/${command.id}` },
      RunDetail,
    );
    if (command.json) write(JSON.stringify(json, null, 2));
    else runBlock(data).forEach((line) => write(line));
  }
}
