import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { generateScenario, type Scenario } from '../src/demo/scenario.js';
import type { PollPolicy } from '../src/config/schema.js';
import { figuresByRun, present, type RunFigures } from './analysis.js';
import { ProcSampler } from './proc-stats.js';
import { exitWithin, sleep, startNode } from './processes.js';
import { max, mean, median, peakInWindow, percentile } from './stats.js';
import {
  readJson,
  startReceiving,
  startSimulated,
  watcherEnv,
  writeRunList,
  type ReceiverLog,
  type RequestLog,
} from './world.js';

/**
 * The scenario: 200 runs created over 10 s, each living 10-60 s (PENDING, then
 * PROCESSING), with the generator's outcome mix and the three progress shapes.
 */
export function comparisonScenario(seed = 200): Scenario {
  return generateScenario({
    seed,
    count: 200,
    startSpreadMs: 10_000,
    minDurationMs: 10_000,
    maxDurationMs: 60_000,
  });
}

/**
 * The same for every policy. The request-rate cap is raised from its default (20/s) so that the
 * fixed 1 s baseline really polls every second: ~150 runs are live at once, and a 20/s cap
 * would turn "fixed 1 s" into "fixed 7 s". Concurrency keeps its default.
 */
export const COMPARISON_ENV = {
  POLL_MIN_INTERVAL_MS: '1000',
  POLL_MAX_INTERVAL_MS: '10000',
  POLL_RATE_PER_SECOND: '500',
  POLL_CONCURRENCY: '8',
  EXIT_WHEN_DONE: 'true',
} as const;

export interface PolicyResult {
  policy: PollPolicy;
  exit: number | string;
  wallSeconds: number;
  runs: RunFigures[];
  pollsMean: number;
  pollsMedian: number;
  detectionP50: number;
  detectionP95: number;
  detectionMax: number;
  webhookP50: number;
  webhookP95: number;
  webhookMax: number;
  cpuSeconds: number;
  peakRssBytes: number;
  /** Most API requests in any 1 s window, all runs together. */
  peakRequestsPerSecond: number;
  missedTerminal: number;
  pollsAfterTerminal: number;
  notDelivered: number;
  duplicates: number;
}

/**
 * One policy against a fresh simulator and receiver. Runs are handed to the watcher as they
 * are created (config file rewritten, then SIGHUP), the way a client adds a run it has just
 * started; the watcher exits by itself once every run has ended and every webhook has landed.
 */
export async function runPolicy(
  policy: PollPolicy,
  scenario: Scenario,
  baseDir: string,
): Promise<PolicyResult> {
  const dir = path.join(baseDir, `compare-${policy}`);
  mkdirSync(dir, { recursive: true });
  const sim = await startSimulated(dir, scenario);
  const receiver = await startReceiving(dir);
  const configFile = path.join(dir, 'watcher.json');
  const byStart = [...scenario.runs].sort((a, b) => a.startMs - b.startMs);
  const created = () =>
    byStart.filter((run) => sim.t0 + run.startMs <= Date.now()).map((run) => run.runId);

  while (created().length === 0) await sleep(5);
  let listed = created();
  writeRunList(configFile, listed);
  const watcher = startNode(
    `watcher-${policy}`,
    'main.js',
    [],
    watcherEnv(sim.url, receiver.url, configFile, path.join(dir, 'state'), {
      ...COMPARISON_ENV,
      POLL_POLICY: policy,
    }),
    dir,
  );
  const sampler = new ProcSampler(watcher.pid);
  let exited = false;
  void watcher.exited.then(() => (exited = true));
  await watcher.waitForEvent('watcher.started', 30_000);
  await sleep(100); // the SIGHUP handler is installed just after the started line
  while (listed.length < scenario.runs.length && !exited) {
    await sleep(250);
    const now = created();
    if (now.length > listed.length) {
      listed = now;
      writeRunList(configFile, listed);
      watcher.process.kill('SIGHUP');
    }
  }
  const exit = await exitWithin(watcher, 180_000);
  sampler.stop();
  const wallSeconds = ((sampler.last?.at ?? Date.now()) - watcher.spawnedAt) / 1000;
  await Promise.all([sim.child.stop(), receiver.child.stop()]);

  const requests = readJson<RequestLog>(sim.requestLog);
  const received = readJson<ReceiverLog>(receiver.log);
  const runs = figuresByRun(requests, received);
  const polls = runs.map((r) => r.polls);
  const detection = present(runs.map((r) => r.detectionMs));
  const webhook = present(runs.map((r) => r.webhookMs));
  return {
    policy,
    exit,
    wallSeconds,
    runs,
    pollsMean: mean(polls),
    pollsMedian: median(polls),
    detectionP50: percentile(detection, 50),
    detectionP95: percentile(detection, 95),
    detectionMax: max(detection),
    webhookP50: percentile(webhook, 50),
    webhookP95: percentile(webhook, 95),
    webhookMax: max(webhook),
    cpuSeconds: sampler.last?.cpuSeconds ?? NaN,
    peakRssBytes: sampler.last?.hwmBytes ?? NaN,
    peakRequestsPerSecond: peakInWindow(
      requests.requests.map((r) => r.at),
      1_000,
    ),
    missedTerminal: runs.length - detection.length,
    pollsAfterTerminal: runs.reduce((sum, r) => sum + r.pollsAfterTerminal, 0),
    notDelivered: runs.length - webhook.length,
    duplicates: received.duplicates,
  };
}
