import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it } from '@jest/globals';
import { UsageError } from '../../src/cli/deliveries.js';
import {
  NoPermissionError,
  WatcherAnswerError,
  WatcherUnreachableError,
  runRunsCommand,
} from '../../src/cli/runs.js';
import { closeServer, listenOn } from '../../src/demo/http-server.js';
import { MAIN, trackChild } from '../helpers/watcher-process.js';

// The `runs` command against a real HTTP server on 127.0.0.1 that answers as docs/api.md says
// the watcher's run API does, and records what it was sent.

const TOKEN = 'tok-5f0c1d2e3a4b5c6d7e8f90a1b2c3d4e5f6a7b8c9';
const RUN_A = '3c90c3cc-0d44-4b50-8888-8dd25736052a';
const RUN_B = '7d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6';
const RUN_C = 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d';

interface Recorded {
  method: string;
  path: string;
  query: Record<string, string>;
  authorization: string | undefined;
  contentType: string | undefined;
  body: unknown;
}
type Answer = { status: number; body?: unknown; raw?: string } | 'never';

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => closeServer(server)));
});

/** The stand-in for the watcher: checks the bearer token as the API does, then asks `answer`. */
async function startApi(answer: (req: Recorded) => Answer) {
  const requests: Recorded[] = [];
  let received: () => void = () => {};
  const firstRequest = new Promise<void>((resolve) => (received = resolve));
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const text = Buffer.concat(chunks).toString('utf8');
      const recorded: Recorded = {
        method: req.method ?? '',
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        authorization: req.headers.authorization,
        contentType: req.headers['content-type'],
        body: text === '' ? undefined : JSON.parse(text),
      };
      requests.push(recorded);
      received();
      const reply: Answer =
        recorded.authorization === `Bearer ${TOKEN}`
          ? answer(recorded)
          : { status: 401, body: apiError('unauthorized', 'missing or wrong bearer token') };
      if (reply === 'never') return; // holds the request open until the server closes
      res.writeHead(reply.status, { 'content-type': 'application/json' });
      res.end(reply.raw ?? JSON.stringify(reply.body));
    });
  });
  const url = await listenOn(server, 0, '127.0.0.1');
  servers.push(server);
  return { url, requests, firstRequest };
}

/** A URL where nothing listens: a server's port, just closed. */
async function closedPortUrl(): Promise<string> {
  const server = createServer();
  const url = await listenOn(server, 0, '127.0.0.1');
  await closeServer(server);
  return url;
}

function apiError(code: string, message: string, field?: string) {
  return { error: { code, message, ...(field === undefined ? {} : { field }) } };
}

/** A run as GET /api/runs lists it (the example of docs/api.md). */
function listed(runId: string, overrides: Record<string, unknown> = {}) {
  return {
    run_id: runId,
    source: 'api',
    status: 'PROCESSING',
    samples_completed: 412,
    samples_failed: 3,
    number_of_samples: 1000,
    percent: 41,
    total_cost: 10.8,
    added_at: '2026-12-02T10:00:00.000Z',
    last_polled_at: '2026-12-02T10:12:30.000Z',
    next_poll_at: '2026-12-02T10:13:10.000Z',
    predicted_end: { earliest: '2026-12-02T10:29:40.000Z', latest: '2026-12-02T10:31:05.000Z' },
    outcome: null,
    finished_at: null,
    deliveries: [],
    ...overrides,
  };
}

const finished = (runId: string, overrides: Record<string, unknown> = {}) =>
  listed(runId, {
    source: 'discovery',
    status: 'SUCCEEDED',
    samples_completed: 9_990,
    samples_failed: 9,
    number_of_samples: 10_000,
    percent: 99,
    total_cost: 1234.5,
    next_poll_at: null,
    predicted_end: null,
    outcome: 'run.watch_timeout',
    finished_at: '2026-12-02T11:00:00.000Z',
    deliveries: [{ receiver: 'https://hooks.example.test/in', state: 'delivered', attempts: 1 }],
    ...overrides,
  });

/** Runs the command in-process; what it wrote, and what it threw (if it did). */
async function runs(args: string[], url: string, env: Record<string, string> = {}) {
  const out: string[] = [];
  let error: unknown = null;
  try {
    await runRunsCommand(args, (line) => out.push(line), {
      WATCHER_URL: url,
      ADMIN_TOKEN: TOKEN,
      ...env,
    });
  } catch (thrown) {
    error = thrown;
  }
  return { out, error, stdout: out.join('\n') };
}

describe('runs add / remove', () => {
  it('add sends every run ID, lower-cased and once, and says what became of each', async () => {
    const api = await startApi(() => ({
      status: 200,
      body: { added: [RUN_A], already_watched: [RUN_B], already_finished: [RUN_C] },
    }));
    const { out, error } = await runs(['add', RUN_A.toUpperCase(), RUN_B, RUN_C, RUN_A], api.url);
    expect(error).toBeNull();
    expect(api.requests).toEqual([
      {
        method: 'POST',
        path: '/api/runs',
        query: {},
        authorization: `Bearer ${TOKEN}`,
        contentType: 'application/json',
        body: { run_ids: [RUN_A, RUN_B, RUN_C] },
      },
    ]);
    expect(out).toEqual([
      `added             ${RUN_A}`,
      `already watched   ${RUN_B}`,
      `already finished  ${RUN_C} (not watched again; replay its deliveries to resend)`,
    ]);
  });

  it('remove sends DELETE for the run and says it was removed', async () => {
    const api = await startApi(() => ({ status: 200, body: { run_id: RUN_A, removed: true } }));
    const { out, error } = await runs(['remove', RUN_A], api.url);
    expect(error).toBeNull();
    expect(api.requests.map((r) => `${r.method} ${r.path}`)).toEqual([`DELETE /api/runs/${RUN_A}`]);
    expect(out).toEqual([`removed ${RUN_A}`]);
  });

  it('shows an API error body as its message: remove of a run that is not watched', async () => {
    const api = await startApi(() => ({
      status: 404,
      body: apiError('not_found', `run ${RUN_A} is not watched`),
    }));
    const { out, error } = await runs(['remove', RUN_A], api.url);
    expect(error).toBeInstanceOf(WatcherAnswerError);
    expect((error as Error).message).toBe(
      `the watcher answered 404 to DELETE /api/runs/${RUN_A}: run ${RUN_A} is not watched`,
    );
    expect(out).toEqual([]);
  });
});

describe('runs list', () => {
  /** Two pages, the second after the cursor of the first. */
  async function twoPages() {
    const page1 = [listed(RUN_A), finished(RUN_B)];
    const page2 = [
      listed(RUN_C, {
        source: 'env',
        status: null,
        samples_completed: null,
        samples_failed: null,
        number_of_samples: null,
        percent: null,
        total_cost: null,
        last_polled_at: null,
        predicted_end: null,
        extra_field_of_a_later_version: 'kept in --json',
      }),
    ];
    return startApi((req) =>
      req.query['cursor'] === undefined
        ? { status: 200, body: { runs: page1, next_cursor: 'page-2' } }
        : { status: 200, body: { runs: page2, next_cursor: null } },
    );
  }

  it('follows next_cursor with the same filters, and prints one table in 120 columns', async () => {
    const api = await twoPages();
    const { out, error } = await runs(
      ['list', '--state', 'finished', '--status=SUCCEEDED'],
      api.url,
    );
    expect(error).toBeNull();
    expect(api.requests.map((r) => [r.method, r.path, r.query])).toEqual([
      ['GET', '/api/runs', { limit: '500', state: 'finished', status: 'SUCCEEDED' }],
      [
        'GET',
        '/api/runs',
        { limit: '500', state: 'finished', status: 'SUCCEEDED', cursor: 'page-2' },
      ],
    ]);
    expect(out).toHaveLength(4);
    expect(out[0]).toMatch(/^RUN ID +SOURCE +STATUS +PROGRESS +COST +ADDED \(UTC\) +OUTCOME$/);
    expect(out[1]!.split(/ {2,}/)).toEqual([
      RUN_A,
      'api',
      'PROCESSING',
      '415/1000 (41%)',
      '10.80',
      '2026-12-02 10:00',
      '-',
    ]);
    expect(out[2]!.split(/ {2,}/)).toEqual([
      RUN_B,
      'discovery',
      'SUCCEEDED',
      '9999/10000 (99%)',
      '1234.50',
      '2026-12-02 10:00',
      'watch_timeout',
    ]);
    expect(out[3]!.split(/ {2,}/)).toEqual([RUN_C, 'env', '-', '-', '-', '2026-12-02 10:00', '-']);
    // The widest values of each column (discovery, a 16-character progress, watch_timeout).
    for (const line of out) expect(line.length).toBeLessThanOrEqual(120);
    // Columns line up: every value of a column starts where its header does.
    const outcomeAt = out[0]!.indexOf('OUTCOME');
    expect(out[2]!.indexOf('watch_timeout')).toBe(outcomeAt);
  });

  it('--json prints the runs of every page as one JSON array, as the watcher sent them', async () => {
    const api = await twoPages();
    const { out, error } = await runs(['list', '--json'], api.url);
    expect(error).toBeNull();
    expect(out).toHaveLength(1);
    const printed = JSON.parse(out[0]!) as Record<string, unknown>[];
    expect(printed.map((run) => run['run_id'])).toEqual([RUN_A, RUN_B, RUN_C]);
    expect(printed[0]).toEqual(listed(RUN_A));
    expect(printed[2]?.['extra_field_of_a_later_version']).toBe('kept in --json');
    expect(api.requests.map((r) => r.query)).toEqual([
      { limit: '500' },
      { limit: '500', cursor: 'page-2' },
    ]);
  });

  it('says so when there are no runs', async () => {
    const api = await startApi(() => ({ status: 200, body: { runs: [], next_cursor: null } }));
    expect((await runs(['list'], api.url)).out).toEqual(['no runs']);
  });

  it('a body that is not the documented shape is an error naming the field, not a table', async () => {
    const api = await startApi(() => ({
      status: 200,
      body: { runs: [listed(RUN_A), listed(RUN_B, { percent: '41%' })], next_cursor: null },
    }));
    const { out, error } = await runs(['list'], api.url);
    expect(error).toBeInstanceOf(WatcherAnswerError);
    expect((error as Error).message).toMatch(
      /^the watcher's answer to GET \/api\/runs is not the documented shape \(runs\.1\.percent: /,
    );
    expect(out).toEqual([]);
  });

  it('a cursor that comes back is an error, not an endless loop', async () => {
    const api = await startApi(() => ({
      status: 200,
      body: { runs: [], next_cursor: 'same' },
    }));
    const { error } = await runs(['list'], api.url);
    expect(error).toBeInstanceOf(WatcherAnswerError);
    expect(api.requests).toHaveLength(2);
  });

  it('a 404 on the list hints that the API may be off on the watcher', async () => {
    const api = await startApi(() => ({
      status: 404,
      body: apiError('not_found', 'no such path'),
    }));
    const { error } = await runs(['list'], api.url);
    expect(error).toBeInstanceOf(WatcherAnswerError);
    expect((error as Error).message).toContain('is ADMIN_TOKEN set on the watcher?');
  });
});

describe('runs show', () => {
  const detail = {
    ...finished(RUN_B),
    snapshot: {
      id: RUN_B,
      status: 'SUCCEEDED',
      spec_id: 'f0e1d2c3-b4a5-4968-8776-655443322110',
      spec_name: 'Support chats\u001b[31m',
      spec_version: 3,
      dataset_id: null,
      dataset_name: null,
      created_at: '2026-12-02T09:59:00Z',
      completed_at: '2026-12-02T10:58:00Z',
      generated_files: [{ id: 'f1' }, { id: 'f2' }],
      generated_files_total: 1500,
    },
    deliveries: [
      {
        delivery_id: 'dlv_0123456789abcdef0123',
        webhook_id: `msg_${RUN_B.replaceAll('-', '')}_watch_timeout`,
        receiver: 'https://hooks.example.test/in',
        state: 'dead_lettered',
        attempts: 8,
        last_error: 'HTTP 500',
        next_attempt_at: null,
      },
      {
        delivery_id: 'dlv_fedcba9876543210fedc',
        webhook_id: `msg_${RUN_B.replaceAll('-', '')}_watch_timeout`,
        receiver: 'https://other.example.test/hook',
        state: 'pending',
        attempts: 1,
        last_error: null,
        next_attempt_at: '2026-12-02T11:05:00.000Z',
      },
    ],
  };

  it('prints the run, its snapshot summary and each delivery', async () => {
    const api = await startApi(() => ({ status: 200, body: detail }));
    const { out, error } = await runs(['show', RUN_B.toUpperCase()], api.url);
    expect(error).toBeNull();
    expect(api.requests.map((r) => `${r.method} ${r.path}`)).toEqual([`GET /api/runs/${RUN_B}`]);
    expect(out).toEqual([
      `run          ${RUN_B}`,
      'source       discovery',
      'status       SUCCEEDED',
      'progress     9999/10000 (99%): 9990 completed, 9 failed',
      'cost         1234.50',
      'added        2026-12-02T10:00:00.000Z',
      'last poll    2026-12-02T10:12:30.000Z',
      'next poll    -',
      'predicted    -',
      'outcome      run.watch_timeout',
      'finished     2026-12-02T11:00:00.000Z',
      'snapshot',
      // An escape sequence from the API is not passed to the terminal.
      '  spec       Support chats?[31m v3 (f0e1d2c3-b4a5-4968-8776-655443322110)',
      '  dataset    -',
      '  created    2026-12-02T09:59:00Z',
      '  completed  2026-12-02T10:58:00Z',
      '  files      1500',
      'delivery     dlv_0123456789abcdef0123 dead_lettered, 8 attempts',
      '  receiver   https://hooks.example.test/in',
      `  webhook-id msg_${RUN_B.replaceAll('-', '')}_watch_timeout`,
      '  last error HTTP 500',
      'delivery     dlv_fedcba9876543210fedc pending, 1 attempt',
      '  receiver   https://other.example.test/hook',
      `  webhook-id msg_${RUN_B.replaceAll('-', '')}_watch_timeout`,
      '  next try   2026-12-02T11:05:00.000Z',
    ]);
  });

  it('--json prints the run as the watcher sent it', async () => {
    const api = await startApi(() => ({ status: 200, body: detail }));
    const { out } = await runs(['show', RUN_B, '--json'], api.url);
    expect(JSON.parse(out.join('\n'))).toEqual(detail);
  });
});

describe('runs: failures', () => {
  it('a run ID that is not a UUID is a usage error, and nothing is sent', async () => {
    const api = await startApi(() => ({ status: 500 }));
    for (const args of [
      ['add', RUN_A, 'not-a-uuid'],
      ['show', '12345'],
      ['remove', `${RUN_A}x`],
    ]) {
      const { error } = await runs(args, api.url);
      expect(error).toBeInstanceOf(UsageError);
      expect((error as Error).message).toMatch(/^run ID must be a UUID, got "/);
    }
    expect(api.requests).toEqual([]);
  });

  it('a bad command line is a one-line usage error, and nothing is sent', async () => {
    const api = await startApi(() => ({ status: 500 }));
    const cases: [string[], string][] = [
      [[], 'runs needs a subcommand'],
      [['watch'], 'unknown subcommand "watch"'],
      [['add'], 'runs add needs at least one run ID'],
      [['remove', RUN_A, RUN_B], 'runs remove takes one run ID, got 2'],
      [['show'], 'runs show takes one run ID, got 0'],
      [['list', '--state', 'done'], '--state must be active or finished, got "done"'],
      [['list', '--status'], '--status needs a value'],
      [['list', '--verbose'], 'unknown option "--verbose" for runs list'],
      [['list', RUN_A], 'runs list takes no run ID'],
      [['add', '--json', RUN_A], 'unknown option "--json" for runs add'],
    ];
    for (const [args, problem] of cases) {
      const { error } = await runs(args, api.url);
      expect(error).toBeInstanceOf(UsageError);
      expect((error as Error).message).toContain(problem);
      expect((error as Error).message).not.toContain('\n');
    }
    expect(api.requests).toEqual([]);
  });

  it('without ADMIN_TOKEN it says so, and sends nothing', async () => {
    const api = await startApi(() => ({ status: 500 }));
    const { error } = await runs(['list'], api.url, { ADMIN_TOKEN: '' });
    expect(error).toBeInstanceOf(NoPermissionError);
    expect((error as Error).message).toBe(
      "ADMIN_TOKEN is not set: the runs command needs the watcher's admin token",
    );
    expect(api.requests).toEqual([]);
  });

  it('a token the watcher refuses (401) is told apart from a missing one', async () => {
    const api = await startApi(() => ({ status: 200, body: { runs: [], next_cursor: null } }));
    const wrong = 'wrong-0000000000000000000000000000000000';
    const { error } = await runs(['list'], api.url, { ADMIN_TOKEN: wrong });
    expect(error).toBeInstanceOf(NoPermissionError);
    expect((error as Error).message).toBe(`the watcher at ${api.url}/ refused ADMIN_TOKEN (401)`);
    expect(api.requests.map((r) => r.authorization)).toEqual([`Bearer ${wrong}`]);
  });

  it('an unreachable watcher is named by its URL, without its query', async () => {
    const url = await closedPortUrl();
    const { error } = await runs(['list'], `${url}/watcher?sig=hidden-value`);
    expect(error).toBeInstanceOf(WatcherUnreachableError);
    expect((error as Error).message).toMatch(
      new RegExp(`^watcher not reachable at ${url}/watcher/ \\(connect ECONNREFUSED `),
    );
    expect((error as Error).message).not.toContain('hidden-value');
  });

  it('a watcher that does not answer in time is unreachable too', async () => {
    const api = await startApi(() => 'never');
    const out: string[] = [];
    const error = await runRunsCommand(
      ['list'],
      (line) => out.push(line),
      { WATCHER_URL: api.url, ADMIN_TOKEN: TOKEN },
      200,
    ).catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(WatcherUnreachableError);
    expect((error as Error).message).toBe(
      `watcher not reachable at ${api.url}/ (no answer within 0.2 s)`,
    );
    expect(api.requests).toHaveLength(1);
  });

  it('a 500 is an error, with the message of its body when it has one', async () => {
    const withBody = await startApi(() => ({
      status: 500,
      body: apiError('internal', 'store is closed'),
    }));
    const bare = await startApi(() => ({ status: 502, raw: '<html>Bad Gateway</html>' }));
    const first = await runs(['show', RUN_A], withBody.url);
    expect(first.error).toBeInstanceOf(WatcherAnswerError);
    expect((first.error as Error).message).toBe(
      `the watcher answered 500 to GET /api/runs/${RUN_A}: store is closed`,
    );
    const second = await runs(['add', RUN_A], bare.url);
    expect(second.error).toBeInstanceOf(WatcherAnswerError);
    expect((second.error as Error).message).toBe(
      'the watcher answered 502 to POST /api/runs: HTTP 502',
    );
  });

  it('never writes the token, whatever happens', async () => {
    const api = await startApi((req) =>
      req.path === '/api/runs' && req.method === 'GET'
        ? { status: 200, body: { runs: [listed(RUN_A)], next_cursor: null } }
        : req.method === 'POST'
          ? { status: 400, body: apiError('invalid_request', 'run_ids[0]: bad', 'run_ids[0]') }
          : { status: 500, raw: 'not json' },
    );
    const unreachable = await closedPortUrl();
    const results = [
      await runs(['list'], api.url),
      await runs(['list', '--json'], api.url),
      await runs(['add', RUN_A], api.url),
      await runs(['show', RUN_A], api.url),
      await runs(['list'], unreachable),
      await runs(['list'], api.url, { ADMIN_TOKEN: `${TOKEN}x` }),
    ];
    expect(api.requests.length).toBeGreaterThan(0);
    for (const { stdout, error } of results) {
      expect(stdout).not.toContain(TOKEN);
      expect(String(error)).not.toContain(TOKEN);
    }
    // Something was written and something failed: the check above saw both kinds of output.
    expect(results[0]!.stdout).toContain(RUN_A);
    expect(results.filter(({ error }) => error !== null)).toHaveLength(4);
  });
});

describe('the built program', () => {
  /** `node dist/main.js runs …` with only the env given (plus PATH), ended after the test. */
  function program(args: string[], env: Record<string, string>) {
    const child = trackChild(
      spawn(process.execPath, [MAIN, 'runs', ...args], {
        env: { PATH: process.env['PATH'] ?? '', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const exited = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
      child.on('close', (code) => resolve({ code, stdout, stderr })),
    );
    return { child, exited };
  }

  it('exits 69 with one line on stderr when the watcher is not reachable', async () => {
    const url = await closedPortUrl();
    const { code, stdout, stderr } = await program(['list'], {
      WATCHER_URL: url,
      ADMIN_TOKEN: TOKEN,
    }).exited;
    expect(code).toBe(69);
    expect(stdout).toBe('');
    expect(stderr).toMatch(
      new RegExp(`^dataframer-run-watcher: watcher not reachable at ${url}/ \\([^\\n]*\\)\\n$`),
    );
    expect(stderr).not.toContain(TOKEN);
  });

  it('maps each failure to its exit code, each with one line on stderr', async () => {
    const api = await startApi((req) =>
      req.method === 'DELETE'
        ? { status: 500, body: apiError('internal', 'boom') }
        : { status: 200, body: { runs: [], next_cursor: null } },
    );
    const cases: [string[], Record<string, string>, number, string][] = [
      [['list'], { ADMIN_TOKEN: TOKEN }, 0, ''],
      [['show', 'nope'], { ADMIN_TOKEN: TOKEN }, 64, 'run ID must be a UUID'],
      [['list'], {}, 77, 'ADMIN_TOKEN is not set'],
      [['list'], { ADMIN_TOKEN: `${TOKEN}-wrong` }, 77, 'refused ADMIN_TOKEN (401)'],
      [['remove', RUN_A], { ADMIN_TOKEN: TOKEN }, 70, 'boom'],
    ];
    for (const [args, env, exitCode, message] of cases) {
      const result = await program(args, { WATCHER_URL: api.url, ...env }).exited;
      expect({ args, code: result.code }).toEqual({ args, code: exitCode });
      if (exitCode === 0) expect(result.stdout).toBe('no runs\n');
      else {
        expect(result.stderr).toMatch(/^dataframer-run-watcher: [^\n]+\n$/);
        expect(result.stderr).toContain(message);
      }
      expect(result.stdout + result.stderr).not.toContain(TOKEN);
    }
  });

  it('a stop signal ends a command waiting on the watcher at once', async () => {
    const api = await startApi(() => 'never');
    const run = program(['list'], { WATCHER_URL: api.url, ADMIN_TOKEN: TOKEN });
    await api.firstRequest;
    run.child.kill('SIGTERM');
    expect((await run.exited).code).toBe(143);
  });
});
