import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { DataFramerClient } from '../../src/dataframer/client.js';
import {
  InvalidResponseError,
  RateLimitedError,
  RunNotFoundError,
  TransientError,
  UnauthorizedError,
} from '../../src/dataframer/errors.js';
import type { RunTimeline } from '../../src/demo/scenario.js';
import { Simulator } from '../../src/demo/simulator.js';

// The simulator is only useful if the watcher's own client reads it as it would the real API.
const RUN_ID = '3c90c3cc-0d44-4b50-8888-8dd25736052a';
const T0 = Date.parse('2026-11-23T06:00:00.000Z');
const run: RunTimeline = {
  runId: RUN_ID,
  startMs: 0,
  pendingMs: 1_000,
  processingMs: 4_000,
  outcome: 'FAILED',
  numberOfSamples: 50,
  shape: 'tail',
  failedRatio: 0.4,
};

let clock: number;
let simulator: Simulator;
let baseUrl: string;

function client(apiKey = 'k'): DataFramerClient {
  return new DataFramerClient({ baseUrl, apiKey, timeoutMs: 2_000, retries: 0, now: () => clock });
}

beforeEach(async () => {
  clock = T0;
  simulator = new Simulator({ scenario: { runs: [run] }, apiKey: 'k', now: () => clock });
  baseUrl = await simulator.listen();
});

afterEach(async () => {
  await simulator.close();
});

describe('DataFramerClient against the simulator', () => {
  it('reads the run through its life', async () => {
    expect((await client().readRun(RUN_ID)).run.status).toBe('PENDING');
    clock = T0 + 3_000;
    expect((await client().readRun(RUN_ID)).run.status).toBe('PROCESSING');
    clock = T0 + 5_000;
    const { run: done } = await client().readRun(RUN_ID);
    expect(done.status).toBe('FAILED');
    expect(done.completed_at).toBe('2026-11-23T06:00:05.000Z');
  });

  it('maps each simulated failure to the typed error the watcher acts on', async () => {
    await expect(client('wrong').readRun(RUN_ID)).rejects.toBeInstanceOf(UnauthorizedError);
    await expect(client().readRun('00000000-0000-4000-8000-000000000000')).rejects.toBeInstanceOf(
      RunNotFoundError,
    );
    simulator.setFaults({ rateLimitRate: 1, retryAfterSeconds: 2 });
    await expect(client().readRun(RUN_ID)).rejects.toMatchObject({
      constructor: RateLimitedError,
      retryAfterMs: 2_000,
    });
    simulator.setFaults({ resetRate: 1 });
    await expect(client().readRun(RUN_ID)).rejects.toMatchObject({
      constructor: TransientError,
      status: null,
    });
    simulator.setFaults({ malformedRate: 1 });
    await expect(client().readRun(RUN_ID)).rejects.toMatchObject({
      constructor: InvalidResponseError,
      path: '(body)',
    });
    simulator.setFaults({ schemaBreakRate: 1 });
    await expect(client().readRun(RUN_ID)).rejects.toBeInstanceOf(InvalidResponseError);
  });
});
