import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { generateScenario } from '../src/demo/scenario.js';
import { figuresByRun, present } from './analysis.js';
import { ProcSampler, type ProcSample } from './proc-stats.js';
import { exitWithin, sleep, startNode, type Child, type Line } from './processes.js';
import { max, median, peakInWindow } from './stats.js';
import {
  readJson,
  startReceiving,
  startSimulated,
  watcherEnv,
  writeRunList,
  type ReceiverLog,
  type RequestLog,
} from './world.js';

export const SCALE_RUNS = 10_000;
/**
 * Every run ends between these offsets from the simulator's start: after both steady-state
 * windows, within 3 s of each other for the fan-out.
 */
const END_FROM_MS = 100_000;
const END_SPREAD_MS = 3_000;
const WARM_UP_MS = 10_000;
const WINDOW_MS = 30_000;

/** Defaults except POLL_MIN 5 s (the scale setting). */
const DEFAULTS_ENV = { POLL_MIN_INTERVAL_MS: '5000' } as const;
/**
 * A second steady run with V8's own young-generation sizing, where `npm start` and the image
 * launch node with 8 MB semi-spaces: `0` is V8's "no size chosen", so this shows what the cap saves.
 */
export const V8_YOUNG_GEN = '--max-semi-space-size=0';
/**
 * For the fan-out only: 10,000 ends cannot be seen within a few seconds at 20 requests per
 * second (that takes 500 s, whatever the policy), so the caps are raised here, and said so.
 */
export const FANOUT_CAPS = { POLL_RATE_PER_SECOND: '1000', POLL_CONCURRENCY: '32' } as const;

export interface SteadyWindow {
  cpuShare: number;
  rssMaxBytes: number;
  rssMedianBytes: number;
  hwmBytes: number;
  /** Requests to the API during the window, mean per second and the most in any 1 s. */
  requestsPerSecond: number;
  peakRequestsPerSecond: number;
}

export interface ScaleResult {
  runs: number;
  /** Spawn to the `watcher.started` line, which is logged right after the first tick. */
  firstTickMs: number;
  startupMs: number;
  steady: SteadyWindow;
  /** The same with V8's own young-generation sizing (NODE_OPTIONS=--max-semi-space-size=0). */
  steadyV8YoungGen: SteadyWindow;
  fanout: {
    exit: number | string;
    firstTickMs: number;
    endsSpreadMs: number;
    deliveries: number;
    spanMs: number;
    perSecond: number;
    peakPerSecond: number;
    /** First to last poll that saw an end. */
    endsSeenWithinMs: number;
    /** Spawn of the fan-out watcher to the last receipt. */
    lastDeliveryAfterStartMs: number;
    missedTerminal: number;
    pollsAfterTerminal: number;
    notDelivered: number;
    peakRequestsPerSecond: number;
    cpuSeconds: number;
    peakRssBytes: number;
  };
}

function firstTick(started: Line, spawnedAt: number): number {
  return Date.parse(String(started['time'])) - spawnedAt;
}

function cpuShare(samples: ProcSample[]): number {
  const first = samples[0];
  const last = samples.at(-1);
  if (!first || !last || last.at === first.at) return NaN;
  return (last.cpuSeconds - first.cpuSeconds) / ((last.at - first.at) / 1000);
}

interface Measured {
  from: number;
  to: number;
  window: Omit<SteadyWindow, 'requestsPerSecond' | 'peakRequestsPerSecond'>;
}

/** Warm-up, then CPU and RSS of a running watcher over the window; stops it (SIGTERM). */
async function measureSteady(watcher: Child): Promise<Measured> {
  const sampler = new ProcSampler(watcher.pid, 250);
  await sleep(WARM_UP_MS);
  const from = Date.now();
  await sleep(WINDOW_MS);
  const to = Date.now();
  const samples = sampler.between(from, to);
  const hwmBytes = sampler.last?.hwmBytes ?? NaN;
  await watcher.stop();
  sampler.stop();
  const rss = samples.map((s) => s.rssBytes);
  return {
    from,
    to,
    window: {
      cpuShare: cpuShare(samples),
      rssMaxBytes: max(rss),
      rssMedianBytes: median(rss),
      hwmBytes,
    },
  };
}

/**
 * 10,000 runs in one simulator. Three watcher processes share one STATE_DIR: fill (starts,
 * stores the runs, SIGTERM); steady (restart at defaults: first tick, then RSS and CPU over a
 * 30 s window, SIGTERM); the same with V8's own young-generation sizing. Then fan-out: once every run
 * has ended (within 3 s of each other), a watcher with raised caps and a fresh store is given
 * the 10,000 runs: each first poll sees an end; it exits once every webhook has landed.
 */
export async function runScale(baseDir: string, log: (line: string) => void): Promise<ScaleResult> {
  const dir = path.join(baseDir, 'scale');
  mkdirSync(dir, { recursive: true });
  const scenario = generateScenario({
    seed: 10_000,
    count: SCALE_RUNS,
    startSpreadMs: 0,
    minDurationMs: END_FROM_MS,
    maxDurationMs: END_FROM_MS + END_SPREAD_MS,
  });
  const sim = await startSimulated(dir, scenario);
  const receiver = await startReceiving(dir);
  const configFile = path.join(dir, 'watcher.json');
  writeRunList(
    configFile,
    scenario.runs.map((r) => r.runId),
  );
  const env = (extra: Record<string, string>, stateDir = path.join(dir, 'state')) =>
    watcherEnv(sim.url, receiver.url, configFile, stateDir, { ...DEFAULTS_ENV, ...extra });

  log('  scale: fill the store (first start)');
  const fill = startNode('watcher-fill', 'main.js', [], env({}), dir);
  await fill.waitForEvent('watcher.started', 60_000);
  await sleep(2_000);
  await fill.stop();

  log('  scale: restart at defaults, first tick and steady state');
  const steady = startNode('watcher-steady', 'main.js', [], env({}), dir);
  const started = await steady.waitForEvent('watcher.started', 60_000);
  const steadyWindow = await measureSteady(steady);

  log(`  scale: restart with NODE_OPTIONS=${V8_YOUNG_GEN}, steady state`);
  const v8Sized = startNode(
    'watcher-v8-sized',
    'main.js',
    [],
    env({ NODE_OPTIONS: V8_YOUNG_GEN }),
    dir,
  );
  await v8Sized.waitForEvent('watcher.started', 60_000);
  const v8Window = await measureSteady(v8Sized);

  log('  scale: every run ends within 3 s; restart with raised caps for the fan-out');
  await sleep(sim.t0 + END_FROM_MS + END_SPREAD_MS + 1_000 - Date.now());
  const fan = startNode(
    'watcher-fanout',
    'main.js',
    [],
    // A fresh store: every first poll falls within POLL_MIN of the start, rather than at the
    // due times the steady watchers stored (up to POLL_MAX away).
    env({ ...FANOUT_CAPS, EXIT_WHEN_DONE: 'true' }, path.join(dir, 'state-fanout')),
    dir,
  );
  const fanSampler = new ProcSampler(fan.pid, 250);
  const fanStarted = await fan.waitForEvent('watcher.started', 60_000);
  const fanExit = await exitWithin(fan, 120_000);
  fanSampler.stop();
  await Promise.all([sim.child.stop(), receiver.child.stop()]);

  const requests = readJson<RequestLog>(sim.requestLog);
  const received = readJson<ReceiverLog>(receiver.log);
  const runs = figuresByRun(requests, received);
  const inWindow = (w: Measured): SteadyWindow => {
    const at = requests.requests.map((r) => r.at).filter((t) => t >= w.from && t <= w.to);
    return {
      ...w.window,
      requestsPerSecond: at.length / ((w.to - w.from) / 1000),
      peakRequestsPerSecond: peakInWindow(at, 1_000),
    };
  };
  const fanRequests = requests.requests.filter((r) => r.at >= fan.spawnedAt);
  const detection = present(runs.map((r) => r.detectionMs));
  const webhook = present(runs.map((r) => r.webhookMs));
  const seenAt = runs.flatMap((r) =>
    r.detectionMs === null ? [] : [r.finishedAt + r.detectionMs],
  );
  const receipts = received.deliveries.map((d) => d.receivedAt).sort((a, b) => a - b);
  const spanMs = (receipts.at(-1) ?? 0) - (receipts[0] ?? 0);
  const ends = requests.runs.map((r) => r.finishedAt);
  return {
    runs: scenario.runs.length,
    firstTickMs: firstTick(started, steady.spawnedAt),
    startupMs: Number(started['startup_ms']),
    steady: inWindow(steadyWindow),
    steadyV8YoungGen: inWindow(v8Window),
    fanout: {
      exit: fanExit,
      firstTickMs: firstTick(fanStarted, fan.spawnedAt),
      endsSpreadMs: max(ends) - Math.min(...ends),
      deliveries: receipts.length,
      spanMs,
      perSecond: spanMs > 0 ? receipts.length / (spanMs / 1000) : NaN,
      peakPerSecond: peakInWindow(receipts, 1_000),
      endsSeenWithinMs: max(seenAt) - Math.min(...seenAt),
      lastDeliveryAfterStartMs: (receipts.at(-1) ?? NaN) - fan.spawnedAt,
      missedTerminal: runs.length - detection.length,
      pollsAfterTerminal: runs.reduce((sum, r) => sum + r.pollsAfterTerminal, 0),
      notDelivered: runs.length - webhook.length,
      peakRequestsPerSecond: peakInWindow(
        fanRequests.map((r) => r.at),
        1_000,
      ),
      cpuSeconds: fanSampler.last?.cpuSeconds ?? NaN,
      peakRssBytes: fanSampler.last?.hwmBytes ?? NaN,
    },
  };
}
