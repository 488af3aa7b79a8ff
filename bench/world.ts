import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { RequestRecord } from '../src/demo/simulator.js';
import type { Scenario } from '../src/demo/scenario.js';
import { startNode, type Child } from './processes.js';

/** Fresh credentials per bench run: nothing real, nothing reused. */
export const API_KEY = `bench-${randomBytes(8).toString('hex')}`;
export const SECRET = `whsec_${randomBytes(32).toString('base64')}`;

/** What the simulator writes on SIGTERM with --request-log. */
export interface RequestLog {
  startedAt: number;
  runs: { runId: string; outcome: string; finishedAt: number }[];
  requests: RequestRecord[];
}

/** What the receiver writes on SIGTERM with --log. */
export interface ReceiverLog {
  attempts: number;
  duplicates: number;
  rejected: number;
  deliveries: { webhookId: string; body: { data?: { run_id?: string } }; receivedAt: number }[];
}

export interface Simulated {
  child: Child;
  url: string;
  /** Bench clock when the simulator announced itself: its timelines started at or before this. */
  t0: number;
  requestLog: string;
}

/** The simulator in its own process, serving `scenario`; the request log is written on stop. */
export async function startSimulated(dir: string, scenario: Scenario): Promise<Simulated> {
  const scenarioFile = path.join(dir, 'scenario.json');
  const requestLog = path.join(dir, 'requests.json');
  writeFileSync(scenarioFile, JSON.stringify(scenario));
  const child = startNode(
    'simulator',
    'demo/simulator-cli.js',
    ['--scenario', scenarioFile, '--request-log', requestLog, '--api-key', API_KEY],
    {},
    dir,
  );
  const line = await child.waitForEvent('simulator.listening', 30_000);
  return { child, url: String(line['url']), t0: Date.now(), requestLog };
}

export interface Receiving {
  child: Child;
  url: string;
  log: string;
}

/** The verifying demo receiver in its own process; its log (with receipt times) is written on stop. */
export async function startReceiving(dir: string): Promise<Receiving> {
  const log = path.join(dir, 'receiver.json');
  const child = startNode(
    'receiver',
    'demo/receiver-cli.js',
    ['--secret', SECRET, '--log', log],
    {},
    dir,
  );
  const line = await child.waitForEvent('receiver.listening', 30_000);
  return { child, url: String(line['url']), log };
}

export function readJson<T>(file: string): T {
  return JSON.parse(readFileSync(file, 'utf8')) as T;
}

/** Replaces the config file in one rename, as a config-map update would. */
export function writeRunList(file: string, runIds: readonly string[]): void {
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, JSON.stringify({ watchRunIds: runIds }));
  renameSync(tmp, file);
}

/** The watcher's env for a bench run; `extra` adds or overrides settings. */
export function watcherEnv(
  apiUrl: string,
  receiverUrl: string,
  configFile: string,
  stateDir: string,
  extra: Record<string, string>,
): Record<string, string> {
  return {
    DATAFRAMER_API_KEY: API_KEY,
    DATAFRAMER_BASE_URL: apiUrl,
    CONFIG_FILE: configFile,
    WEBHOOK_URLS: receiverUrl,
    WEBHOOK_SECRET: SECRET,
    STATE_DIR: stateDir,
    HTTP_HOST: '127.0.0.1',
    HTTP_PORT: '0',
    ...extra,
  };
}
