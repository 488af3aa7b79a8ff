import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { Settings, type Config, type Receiver } from './schema.js';

/** A setting that stops the start; `setting` is the env name or `file: key` the user wrote. */
export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  constructor(
    readonly setting: string,
    readonly problem: string,
  ) {
    // One line, always: parsers (YAML) write multi-line messages.
    super(`${setting}: ${problem.replace(/\s*\n\s*/g, ' ').trim()}`);
    this.name = 'ConfigError';
  }
}

type EnvKind = 'string' | 'number' | 'boolean' | 'list';

/** The env contract from DESIGN.md (plus a few tuning knobs), mapped to config-file keys. */
export const ENV_SETTINGS: Readonly<Record<string, readonly [keyof Settings, EnvKind]>> = {
  DATAFRAMER_API_KEY: ['apiKey', 'string'],
  DATAFRAMER_BASE_URL: ['baseUrl', 'string'],
  WATCH_RUN_IDS: ['watchRunIds', 'list'],
  WEBHOOK_URLS: ['webhookUrls', 'list'],
  WEBHOOK_SECRET: ['webhookSecret', 'string'],
  POLL_CRON: ['pollCron', 'string'],
  POLL_MIN_INTERVAL_MS: ['pollMinIntervalMs', 'number'],
  POLL_MAX_INTERVAL_MS: ['pollMaxIntervalMs', 'number'],
  POLL_POLICY: ['pollPolicy', 'string'],
  POLL_CONCURRENCY: ['pollConcurrency', 'number'],
  POLL_RATE_PER_SECOND: ['pollRatePerSecond', 'number'],
  REQUEST_TIMEOUT_MS: ['requestTimeoutMs', 'number'],
  NOT_FOUND_AFTER_MS: ['notFoundAfterMs', 'number'],
  MAX_WATCH_MS: ['maxWatchMs', 'number'],
  WEBHOOK_TIMEOUT_MS: ['webhookTimeoutMs', 'number'],
  WEBHOOK_RETRY_SCHEDULE_MS: ['webhookRetryScheduleMs', 'list'],
  STATE_DIR: ['stateDir', 'string'],
  HTTP_HOST: ['httpHost', 'string'],
  HTTP_PORT: ['httpPort', 'number'],
  LOG_LEVEL: ['logLevel', 'string'],
  LOG_FORMAT: ['logFormat', 'string'],
  EXIT_WHEN_DONE: ['exitWhenDone', 'boolean'],
  SHUTDOWN_GRACE_MS: ['shutdownGraceMs', 'number'],
};

const DEFAULT_CONFIG_FILE = 'config/watcher.json';

/** Env values are text; values that do not convert stay text so zod names the problem. */
function fromEnv(value: string, kind: EnvKind): unknown {
  const trimmed = value.trim();
  switch (kind) {
    case 'string':
      return trimmed;
    case 'number':
      return /^-?\d+(\.\d+)?$/.test(trimmed) ? Number(trimmed) : trimmed;
    case 'boolean':
      if (/^(true|1|yes)$/i.test(trimmed)) return true;
      if (/^(false|0|no)$/i.test(trimmed)) return false;
      return trimmed;
    case 'list': {
      const items = trimmed.split(/[\s,]+/).filter((item) => item !== '');
      return items.map((item) => (/^\d+$/.test(item) ? Number(item) : item));
    }
  }
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError('CONFIG_FILE', `cannot read ${file}: ${(error as Error).message}`);
  }
  let parsed: unknown;
  const yaml = /\.ya?ml$/i.test(file);
  try {
    parsed = yaml ? parseYaml(text) : JSON.parse(text);
  } catch (error) {
    // Only the position: parser messages quote the offending text, which may be a secret.
    throw new ConfigError(
      'CONFIG_FILE',
      `${file} is not valid ${yaml ? 'YAML' : 'JSON'}${parsePosition(error)}`,
    );
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError('CONFIG_FILE', `${file} must hold an object of settings`);
  }
  return parsed as Record<string, unknown>;
}

function parsePosition(error: unknown): string {
  const linePos = (error as { linePos?: { line: number; col: number }[] }).linePos?.[0];
  if (linePos) return ` (line ${linePos.line}, column ${linePos.col})`;
  const offset = /position (\d+)/.exec(error instanceof Error ? error.message : '')?.[1];
  return offset ? ` (at character ${offset})` : '';
}

function describeIssue(issue: z.core.$ZodIssue, labels: Map<string, string>): ConfigError {
  const [key, ...rest] = issue.path;
  const keyName = typeof key === 'string' ? key : '';
  const envName = Object.entries(ENV_SETTINGS).find(([, [k]]) => k === keyName)?.[0];
  const label = labels.get(keyName) ?? envName ?? (labels.get('') || 'config');
  const where =
    rest.length > 0
      ? ` (item ${rest.map((p) => (typeof p === 'number' ? p + 1 : String(p))).join('.')})`
      : '';
  return new ConfigError(`${label}${where}`, issue.message);
}

/**
 * One receiver per URL. When WEBHOOK_URLS is set in env it decides the list (env wins); the
 * file's `webhooks` entries then only lend their options to the URLs env names.
 */
function mergeReceivers(settings: Settings, urlsFromEnv: boolean): Receiver[] {
  const byUrl = new Map<string, Receiver>();
  for (const url of settings.webhookUrls) byUrl.set(url, { url });
  for (const receiver of settings.webhooks) {
    if (!urlsFromEnv || byUrl.has(receiver.url)) byUrl.set(receiver.url, receiver);
  }
  return [...byUrl.values()];
}

/**
 * Builds the configuration: defaults, then the config file, then env (env wins).
 * Throws ConfigError naming the first bad setting as the user spelled it.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Config {
  const explicitFile = env['CONFIG_FILE']?.trim();
  const defaultFile = path.resolve(cwd, DEFAULT_CONFIG_FILE);
  const configFile = explicitFile
    ? path.resolve(cwd, explicitFile)
    : existsSync(defaultFile)
      ? defaultFile
      : null;

  const raw: Record<string, unknown> = {};
  const labels = new Map<string, string>();
  const fileSettings = configFile !== null ? readConfigFile(configFile) : {};
  if (configFile !== null) {
    const relative = path.relative(cwd, configFile) || configFile;
    labels.set('', relative);
    for (const [key, value] of Object.entries(fileSettings)) {
      raw[key] = value;
      labels.set(key, `${relative}: ${key}`);
    }
  }
  for (const [name, [key, kind]] of Object.entries(ENV_SETTINGS)) {
    const value = env[name];
    if (value === undefined || (value.trim() === '' && kind !== 'string')) continue;
    raw[key] = fromEnv(value, kind);
    labels.set(key, name);
  }
  // Run IDs are the one list that is merged rather than overridden: env names a few runs,
  // the file holds the long, live list (re-read on change), and both are watched.
  const fileRunIds = fileSettings['watchRunIds'];
  if (
    Array.isArray(fileRunIds) &&
    Array.isArray(raw['watchRunIds']) &&
    raw['watchRunIds'] !== fileRunIds
  ) {
    raw['watchRunIds'] = [...(raw['watchRunIds'] as unknown[]), ...(fileRunIds as unknown[])];
  }

  const result = Settings.safeParse(raw);
  if (!result.success) {
    const [first] = result.error.issues;
    throw first ? describeIssue(first, labels) : new ConfigError('config', 'is invalid');
  }
  const { webhookUrls: _urls, webhooks: _hooks, watchRunIds, ...rest } = result.data;
  return Object.freeze({
    ...rest,
    watchRunIds: Object.freeze([...new Set(watchRunIds)]),
    receivers: Object.freeze(
      mergeReceivers(result.data, labels.get('webhookUrls') === 'WEBHOOK_URLS'),
    ),
    configFile,
  });
}

/**
 * Where the state lives, for the operator commands that need nothing else (no API key):
 * STATE_DIR, else the config file's `stateDir`, else the default.
 */
export function resolveStateDir(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string {
  const fromEnv = env['STATE_DIR']?.trim();
  if (fromEnv) return fromEnv;
  const explicitFile = env['CONFIG_FILE']?.trim();
  const file = explicitFile
    ? path.resolve(cwd, explicitFile)
    : path.resolve(cwd, DEFAULT_CONFIG_FILE);
  if (explicitFile || existsSync(file)) {
    const stateDir = readConfigFile(file)['stateDir'];
    if (typeof stateDir === 'string' && stateDir !== '') return stateDir;
  }
  return Settings.shape.stateDir.def.defaultValue;
}
