import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { generateScenario } from '../src/demo/scenario.js';
import { sleep, startNode } from './processes.js';
import { max, percentile } from './stats.js';
import {
  readJson,
  startReceiving,
  startSimulated,
  watcherEnv,
  writeRunList,
  type RequestLog,
} from './world.js';

export const INTAKE_WATCHED = 10_000;
export const INTAKE_ADDED = 1_000;
/** Run IDs per POST: 100 requests, so their latency has a p95. */
const PER_CALL = 10;
const POLL_MIN_MS = 5_000;
const SATURATING_MAX_MS = 10_000;
const WARM_UP_MS = 10_000;
const TOKEN = 'bench-admin-token-0123456789abcdef0123456789';
const FILL_CAPS = { POLL_RATE_PER_SECOND: '2000', POLL_CONCURRENCY: '64' };

/** Waits until `file` holds `count` lines containing `needle`. */
async function waitForLines(file: string, needle: string, count: number, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const seen = readFileSync(file, 'utf8').split(needle).length - 1;
    if (seen >= count) return;
    if (Date.now() > deadline) throw new Error(`${file}: ${seen} of ${count} "${needle}" lines`);
    await sleep(500);
  }
}

export interface IntakeResult {
  /** POLL_RATE_PER_SECOND: the budget every request on the key shares. */
  ratePerSecond: number;
  postP50Ms: number;
  postP95Ms: number;
  postMaxMs: number;
  /** GET /api/runs?limit=100, 20 times. */
  listP95Ms: number;
  /** From the POST that added a run to its first poll reaching the API. */
  firstPollP50Ms: number;
  firstPollP95Ms: number;
  firstPollMaxMs: number;
  firstPollWithinMin: number;
  neverPolled: number;
  /** First looks per second while they were being made: against the rate cap. */
  firstLooksPerSecond: number;
}

/**
 * A watcher at the scale defaults (POLL_MIN 5 s) with 10,000 runs from its config file, none of
 * which ends during the bench, each already looked at once (a first start with raised caps
 * fills the store); after a restart and a warm-up, 1,000 more runs are added through the run API,
 * 10 per POST. Measured: each POST's latency, a page of `GET /api/runs`, and how long each new
 * run waited for its first poll (the simulator's request log), against POLL_MIN_INTERVAL_MS.
 */
export async function runIntake(
  baseDir: string,
  log: (line: string) => void,
  ratePerSecond: number,
): Promise<IntakeResult> {
  const dir = path.join(baseDir, `intake-${ratePerSecond}`);
  mkdirSync(dir, { recursive: true });
  const scenario = generateScenario({
    seed: 11_000,
    count: INTAKE_WATCHED + INTAKE_ADDED,
    startSpreadMs: 0,
    minDurationMs: 600_000,
    maxDurationMs: 700_000,
  });
  const ids = scenario.runs.map((r) => r.runId);
  const sim = await startSimulated(dir, scenario);
  const receiver = await startReceiving(dir);
  const configFile = path.join(dir, 'watcher.json');
  writeRunList(configFile, ids.slice(0, INTAKE_WATCHED));
  const env = watcherEnv(sim.url, receiver.url, configFile, path.join(dir, 'state'), {
    POLL_MIN_INTERVAL_MS: String(POLL_MIN_MS),
    // Every run looked at at least every 10 s: 1,000 polls a second wanted, far over either
    // cap, so the key's budget is used up when the new runs come (the case that matters).
    POLL_MAX_INTERVAL_MS: String(SATURATING_MAX_MS),
    POLL_RATE_PER_SECOND: String(ratePerSecond),
    ADMIN_TOKEN: TOKEN,
  });
  // A watcher that has run a while has looked at each of its runs: fill the store with raised
  // caps until every run was seen once, so the measured start has no first looks but the new.
  log(`  intake at ${ratePerSecond}/s: ${INTAKE_WATCHED} runs, each looked at once (raised caps)`);
  const fill = startNode('watcher-fill', 'main.js', [], { ...env, ...FILL_CAPS }, dir);
  await waitForLines(fill.stdoutFile, '"event":"run.status_changed"', INTAKE_WATCHED, 180_000);
  await fill.stop();
  log('  intake: restart at the defaults, warm-up');
  const watcher = startNode('watcher-intake', 'main.js', [], env, dir);
  const started = await watcher.waitForEvent('watcher.started', 60_000);
  const base = `http://127.0.0.1:${String(started['http_port'])}/api`;
  const call = async (method: string, route: string, body?: unknown): Promise<number> => {
    const from = performance.now();
    const response = await fetch(`${base}${route}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    await response.arrayBuffer();
    if (!response.ok) throw new Error(`${method} ${route} answered ${response.status}`);
    return performance.now() - from;
  };
  await sleep(WARM_UP_MS);

  log(`  intake: adding ${INTAKE_ADDED} runs through the API`);
  const posts: number[] = [];
  const addedAt = new Map<string, number>();
  const added = ids.slice(INTAKE_WATCHED);
  for (let i = 0; i < added.length; i += PER_CALL) {
    const batch = added.slice(i, i + PER_CALL);
    posts.push(await call('POST', '/runs', { run_ids: batch }));
    for (const runId of batch) addedAt.set(runId, Date.now());
  }
  const lists: number[] = [];
  for (let i = 0; i < 20; i += 1) lists.push(await call('GET', '/runs?limit=100'));
  // 1,000 first looks take 50 s at the default 20 requests a second, whatever the policy.
  await sleep((INTAKE_ADDED / ratePerSecond) * 1000 + 2 * POLL_MIN_MS);
  await watcher.stop();
  await Promise.all([sim.child.stop(), receiver.child.stop()]);

  const firstPoll = new Map<string, number>();
  for (const r of readJson<RequestLog>(sim.requestLog).requests) {
    const runId = r.runId?.toLowerCase();
    if (runId && addedAt.has(runId) && !firstPoll.has(runId)) firstPoll.set(runId, r.at);
  }
  const waits = [...addedAt].flatMap(([runId, at]) => {
    const polled = firstPoll.get(runId);
    return polled === undefined ? [] : [polled - at];
  });
  return {
    ratePerSecond,
    postP50Ms: percentile(posts, 50),
    postP95Ms: percentile(posts, 95),
    postMaxMs: max(posts),
    listP95Ms: percentile(lists, 95),
    firstPollP50Ms: percentile(waits, 50),
    firstPollP95Ms: percentile(waits, 95),
    firstPollMaxMs: max(waits),
    firstPollWithinMin: waits.filter((w) => w <= POLL_MIN_MS).length,
    neverPolled: INTAKE_ADDED - waits.length,
    firstLooksPerSecond:
      (firstPoll.size - 1) /
      ((max([...firstPoll.values()]) - Math.min(...firstPoll.values())) / 1000),
  };
}
