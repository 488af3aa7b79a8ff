import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { Run } from '../../src/dataframer/schema.js';
import { runAt } from '../../src/demo/run-view.js';
import type { RunTimeline } from '../../src/demo/scenario.js';
import { Simulator, type Faults } from '../../src/demo/simulator.js';

const KEY = 'test-key';
const RUN_ID = '3c90c3cc-0d44-4b50-8888-8dd25736052a';
const LATE_ID = '9f0e7a1b-2c3d-4e5f-8a9b-0c1d2e3f4a5b';
const T0 = Date.parse('2026-11-23T06:00:00.000Z');

const run: RunTimeline = {
  runId: RUN_ID,
  startMs: 1_000,
  pendingMs: 1_000,
  processingMs: 10_000,
  outcome: 'SUCCEEDED',
  numberOfSamples: 100,
  shape: 'linear',
  failedRatio: 0.1,
};
const late: RunTimeline = { ...run, runId: LATE_ID, startMs: 60_000 };

let clock: number;
let simulators: Simulator[];
let base: string;

async function start(faults: Faults = {}, seed = 1, history = 0): Promise<Simulator> {
  const simulator = new Simulator({
    scenario: { runs: [run, late] },
    apiKey: KEY,
    faults,
    seed,
    now: () => clock,
    history,
  });
  simulators.push(simulator);
  base = await simulator.listen();
  return simulator;
}

function get(path: string, key: string | null = KEY): Promise<Response> {
  return fetch(`${base}${path}`, {
    headers: key === null ? {} : { authorization: `Bearer ${key}` },
  });
}

const runPath = (id: string) => `/api/dataframer/runs/${id}/`;

beforeEach(() => {
  clock = T0;
  simulators = [];
});

afterEach(async () => {
  await Promise.all(simulators.map((s) => s.close()));
});

describe('Simulator over HTTP', () => {
  it('listens on 127.0.0.1 with an ephemeral port and counts time from listen', async () => {
    clock = T0 - 5_000; // construction time, before listen
    const simulator = new Simulator({ scenario: { runs: [run] }, apiKey: KEY, now: () => clock });
    simulators.push(simulator);
    clock = T0;
    base = await simulator.listen();
    expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(base).not.toBe('http://127.0.0.1:0');
    expect(simulator.startedAt).toBe(T0);
    expect(simulator.finishedAt(RUN_ID)).toBe(T0 + 12_000);
    expect(simulator.finishedAt(LATE_ID)).toBeNull();
  });

  it('answers 401 with a JSON body without the right Bearer key, before anything else', async () => {
    await start({ serverErrorRate: 1 });
    clock = T0 + 5_000;
    for (const key of [null, 'wrong-key', '']) {
      const res = await get(runPath(RUN_ID), key);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
      const body = (await res.json()) as { detail: string };
      expect(body.detail).toMatch(/credentials|token/i);
    }
    const res = await fetch(`${base}${runPath(RUN_ID)}`, { headers: { authorization: KEY } });
    expect(res.status).toBe(401);
    await res.body?.cancel();
  });

  it('answers 404 for a run that has not started, an unknown run and other paths', async () => {
    const simulator = await start({ serverErrorRate: 1, resetRate: 1 });
    clock = T0 + 999;
    for (const path of [
      runPath(RUN_ID),
      runPath(LATE_ID),
      runPath('00000000-0000-4000-8000-000000000000'),
      `/api/dataframer/runs/${RUN_ID}`,
      '/api/dataframer/runs',
      '/healthz',
    ]) {
      const res = await get(path);
      expect(res.status).toBe(404);
      expect(await res.json()).toEqual({ detail: 'Not found.' });
    }
    expect(simulator.requests.map((r) => r.runId)).toEqual([
      RUN_ID,
      LATE_ID,
      '00000000-0000-4000-8000-000000000000',
      null,
      null,
      null,
    ]);
    expect(simulator.requests.every((r) => r.fault === null && r.status === 404)).toBe(true);
  });

  it('refuses other methods on the run path', async () => {
    await start();
    clock = T0 + 5_000;
    const res = await fetch(`${base}${runPath(RUN_ID)}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${KEY}` },
    });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET');
    await res.body?.cancel();
  });

  it('serves the run along its timeline on the injected clock', async () => {
    const simulator = await start();
    const seen: Run[] = [];
    for (const offset of [1_000, 2_000, 7_000, 11_999, 12_000, 99_000]) {
      clock = T0 + offset;
      const res = await get(runPath(RUN_ID));
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/json');
      const body = Run.parse(await res.json());
      expect(body).toEqual(runAt(run, offset, T0));
      seen.push(body);
    }
    expect(seen.map((b) => b.status)).toEqual([
      'PENDING',
      'PROCESSING',
      'PROCESSING',
      'PROCESSING',
      'SUCCEEDED',
      'SUCCEEDED',
    ]);
    expect(seen[2]!.samples_completed! + seen[2]!.samples_failed!).toBe(50);
    expect(seen[4]!.completed_at).toBe(new Date(simulator.finishedAt(RUN_ID)!).toISOString());
    expect(seen[4]!.samples_completed).toBe(90);
    expect(seen[4]!.samples_failed).toBe(10);
    expect(simulator.requests).toEqual(
      [1_000, 2_000, 7_000, 11_999, 12_000, 99_000].map((offset, i) => ({
        at: T0 + offset,
        runId: RUN_ID,
        status: 200,
        fault: null,
        runStatus: seen[i]!.status,
      })),
    );
  });

  it('accepts an upper-case or percent-encoded run id like the real client sends', async () => {
    await start();
    clock = T0 + 5_000;
    const res = await get(runPath(encodeURIComponent(RUN_ID.toUpperCase())));
    expect(res.status).toBe(200);
    expect(Run.parse(await res.json()).id).toBe(RUN_ID);
  });

  it('adds runs later and refuses a duplicate id', async () => {
    const simulator = await start();
    const extra: RunTimeline = {
      ...run,
      runId: '11111111-2222-4333-8444-555555555555',
      startMs: 0,
    };
    clock = T0 + 100;
    expect((await get(runPath(extra.runId))).status).toBe(404);
    simulator.addRuns([extra]);
    const res = await get(runPath(extra.runId));
    expect(res.status).toBe(200);
    expect(Run.parse(await res.json()).status).toBe('PENDING');
    expect(() => simulator.addRuns([extra])).toThrow(/already simulated/);
  });

  describe('faults', () => {
    /** Starts at T0, then moves to 7 s: the run is PROCESSING, half done. */
    async function startFaulty(faults: Faults, seed = 1): Promise<Simulator> {
      clock = T0;
      const simulator = await start(faults, seed);
      clock = T0 + 7_000;
      return simulator;
    }

    it('server errors: 500, 502 (HTML) and 503, some 503s with Retry-After', async () => {
      const simulator = await startFaulty({ serverErrorRate: 1, retryAfterSeconds: 7 });
      const statuses = new Set<number>();
      const retryAfters = new Set<string | null>();
      for (let i = 0; i < 40; i++) {
        const res = await get(runPath(RUN_ID));
        statuses.add(res.status);
        if (res.status === 502) expect(res.headers.get('content-type')).toBe('text/html');
        if (res.status === 503) retryAfters.add(res.headers.get('retry-after'));
        await res.text();
      }
      expect(statuses).toEqual(new Set([500, 502, 503]));
      expect(retryAfters).toEqual(new Set(['7', null]));
      expect(
        simulator.requests.every((r) => r.fault === 'server_error' && r.runStatus === null),
      ).toBe(true);
    });

    it('rate limits with Retry-After, 1 second by default', async () => {
      const simulator = await startFaulty({ rateLimitRate: 1 });
      const res = await get(runPath(RUN_ID));
      expect(res.status).toBe(429);
      expect(res.headers.get('retry-after')).toBe('1');
      expect(((await res.json()) as { detail: string }).detail).toMatch(/throttled/);
      simulator.setFaults({ rateLimitRate: 1, retryAfterSeconds: 30 });
      const again = await get(runPath(RUN_ID));
      expect(again.headers.get('retry-after')).toBe('30');
      await again.body?.cancel();
      expect(simulator.requests.map((r) => [r.status, r.fault])).toEqual([
        [429, 'rate_limit'],
        [429, 'rate_limit'],
      ]);
    });

    it('answers slowly but correctly', async () => {
      const simulator = await startFaulty({ slowRate: 1, slowMs: 150 });
      const started = performance.now();
      const res = await get(runPath(RUN_ID));
      const waited = performance.now() - started;
      expect(res.status).toBe(200);
      expect(Run.parse(await res.json()).status).toBe('PROCESSING');
      expect(waited).toBeGreaterThanOrEqual(140);
      expect(simulator.requests[0]).toMatchObject({
        status: 200,
        fault: 'slow',
        runStatus: 'PROCESSING',
      });
    });

    it('combines slow with another fault', async () => {
      const simulator = await startFaulty({ slowRate: 1, slowMs: 50, rateLimitRate: 1 });
      const res = await get(runPath(RUN_ID));
      expect(res.status).toBe(429);
      await res.body?.cancel();
      expect(simulator.requests[0]?.fault).toBe('slow+rate_limit');
    });

    it('resets the connection without a response', async () => {
      const simulator = await startFaulty({ resetRate: 1 });
      await expect(get(runPath(RUN_ID))).rejects.toThrow(/fetch failed/);
      expect(simulator.requests).toEqual([
        { at: T0 + 7_000, runId: RUN_ID, status: 0, fault: 'reset', runStatus: null },
      ]);
    });

    it('sends truncated JSON', async () => {
      const simulator = await startFaulty({ malformedRate: 1 });
      const full = JSON.stringify(runAt(run, 7_000, T0));
      for (let i = 0; i < 5; i++) {
        const res = await get(runPath(RUN_ID));
        expect(res.status).toBe(200);
        const text = await res.text();
        expect(() => JSON.parse(text) as unknown).toThrow(SyntaxError);
        expect(text.length).toBeLessThan(full.length);
        expect(full.startsWith(text)).toBe(true);
      }
      expect(
        simulator.requests.every((r) => r.fault === 'malformed' && r.runStatus === 'PROCESSING'),
      ).toBe(true);
    });

    it('sends JSON that breaks the Run schema in several ways', async () => {
      const simulator = await startFaulty({ schemaBreakRate: 1 });
      const paths = new Set<string>();
      for (let i = 0; i < 30; i++) {
        const res = await get(runPath(RUN_ID));
        expect(res.status).toBe(200);
        const result = Run.safeParse(await res.json());
        expect(result.success).toBe(false);
        paths.add(result.error!.issues[0]!.path.join('.'));
      }
      expect(paths).toEqual(new Set(['status', 'samples_completed', 'created_at']));
      expect(simulator.requests.every((r) => r.fault === 'schema_break')).toBe(true);
    });

    it('draws the same faults request by request for the same seed', async () => {
      const faults = { serverErrorRate: 0.3, rateLimitRate: 0.3, malformedRate: 0.3 };
      const sequences: (string | null)[][] = [];
      for (const seed of [5, 5, 6]) {
        const simulator = await startFaulty(faults, seed);
        for (let i = 0; i < 25; i++) await (await get(runPath(RUN_ID))).text();
        sequences.push(simulator.requests.map((r) => r.fault));
      }
      expect(sequences[1]).toEqual(sequences[0]);
      expect(sequences[2]).not.toEqual(sequences[0]);
      expect(new Set(sequences[0])).toEqual(
        new Set([null, 'server_error', 'rate_limit', 'malformed']),
      );
    });

    it('stops faulting after setFaults({}) and rejects rates outside 0..1', async () => {
      const simulator = await startFaulty({ serverErrorRate: 1 });
      expect((await get(runPath(RUN_ID))).status).toBeGreaterThanOrEqual(500);
      simulator.setFaults({});
      expect((await get(runPath(RUN_ID))).status).toBe(200);
      expect(() => simulator.setFaults({ resetRate: 2 })).toThrow();
    });

    it('closes promptly with a slow request still waiting', async () => {
      const simulator = await startFaulty({ slowRate: 1, slowMs: 30_000 });
      const pending = get(runPath(RUN_ID));
      while (simulator.requests.length === 0) await new Promise((r) => setTimeout(r, 5));
      const started = performance.now();
      await simulator.close();
      expect(performance.now() - started).toBeLessThan(1_000);
      await expect(pending).rejects.toThrow();
    });
  });

  describe('the list endpoint', () => {
    const list = async () => {
      const res = await get('/api/dataframer/runs/');
      expect(res.status).toBe(200);
      return (await res.json()) as Record<string, unknown>[];
    };

    it('lists the runs that exist, with the list fields only, and the history finished', async () => {
      await start({}, 1, 3);
      clock = T0 + 5_000;
      const items = await list();
      expect(items).toHaveLength(4); // the late run does not exist yet
      for (const item of items) {
        expect(item).not.toHaveProperty('runtime_params');
        expect(item).not.toHaveProperty('generated_files');
        expect(item).toHaveProperty('created_by_email');
      }
      const mine = items.find((item) => item['id'] === RUN_ID)!;
      expect(mine['status']).toBe('PROCESSING');
      const history = items.filter((item) => item['id'] !== RUN_ID);
      for (const item of history) {
        expect(['SUCCEEDED', 'FAILED', 'CANCELED']).toContain(item['status']);
        expect(Date.parse(String(item['completed_at']))).toBeLessThan(T0);
        // Faithful: a run in the list answers on the get-run endpoint too, with the same status.
        const res = await get(runPath(String(item['id'])));
        expect(((await res.json()) as { status: string }).status).toBe(item['status']);
      }
    });

    it('refuses a wrong key, and answers 503 while the list is made unavailable', async () => {
      const simulator = await start();
      clock = T0 + 5_000;
      expect((await get('/api/dataframer/runs/', 'wrong')).status).toBe(401);
      simulator.setFaults({ listUnavailable: true });
      expect((await get('/api/dataframer/runs/')).status).toBe(503);
      expect((await get(runPath(RUN_ID))).status).toBe(200);
      simulator.setFaults({});
      expect(await list()).toHaveLength(1);
    });

    it('breaks one item, not the list, under a schema-break fault', async () => {
      await start({ schemaBreakRate: 1 }, 1, 9);
      clock = T0 + 5_000;
      const items = await list();
      expect(items).toHaveLength(10);
      const intact = items.filter(
        (item) => typeof item['id'] === 'string' && typeof item['status'] === 'string',
      );
      expect(intact.length).toBeGreaterThanOrEqual(9);
    });

    it('creates runs while it runs through POST /simulator/runs, starting from now', async () => {
      const simulator = await start();
      clock = T0 + 30_000;
      const created = { ...run, runId: '7e2c1f4a-9b3d-4c5e-8f6a-1b2c3d4e5f60', startMs: 0 };
      const res = await fetch(`${base}/simulator/runs`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ runs: [created] }),
      });
      expect(res.status).toBe(201);
      expect(simulator.finishedAt(created.runId)).toBe(T0 + 30_000 + 11_000); // pending 1 s, processing 10 s, from now
      const mine = (await list()).find((item) => item['id'] === created.runId);
      expect(mine?.['status']).toBe('PENDING');
      const bad = await fetch(`${base}/simulator/runs`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}` },
        body: '{"runs": [{"runId": "x"}]}',
      });
      expect(bad.status).toBe(400);
    });
  });
});
