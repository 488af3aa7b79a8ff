import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { SECRET_SETTINGS, Settings, shown, type Config, type Receiver } from './schema.js';

/** One line, without control characters (terminal escapes), whatever went in. */
const oneLine = (text: string) => text.replace(/[\s\p{Cc}]+/gu, ' ').trim();

/** A setting that stops the start; `setting` is the env name or `file: key` the user wrote. */
export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  readonly setting: string;
  readonly problem: string;
  constructor(setting: string, problem: string) {
    // One line, always: stderr and the config.reload_failed log line print it as it is.
    super(oneLine(`${setting}: ${problem}`));
    this.name = 'ConfigError';
    this.setting = oneLine(setting);
    this.problem = oneLine(problem);
  }
}

type EnvKind = 'string' | 'number' | 'boolean' | 'list';

/** The env names operators set (README, Settings), mapped to config-file keys. */
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
  MAX_RESPONSE_BYTES: ['maxResponseBytes', 'number'],
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
  RETENTION_DAYS: ['retentionDays', 'number'],
  ADMIN_TOKEN: ['adminToken', 'string'],
  DISCOVER_RUNS: ['discoverRuns', 'boolean'],
  DISCOVERY_INTERVAL_MS: ['discoveryIntervalMs', 'number'],
  DISCOVER_SINCE: ['discoverSince', 'string'],
  DISCOVER_SPEC_IDS: ['discoverSpecIds', 'list'],
  DISCOVER_CREATED_BY: ['discoverCreatedBy', 'list'],
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
  // An empty file is a file caught mid-write or truncated, never "no settings".
  if (text.trim() === '') throw new ConfigError('CONFIG_FILE', `${file} is empty`);
  const yaml = /\.ya?ml$/i.test(file);
  const parsed = yaml ? parseYamlText(file, text) : parseJsonText(file, text);
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError('CONFIG_FILE', `${file} must hold an object of settings`);
  }
  return parsed as Record<string, unknown>;
}

// Parser messages quote the offending text, which may be a secret: only positions are shown.

function parseJsonText(file: string, text: string): unknown {
  const json = text.replace(/^\uFEFF/, ''); // editors on Windows write a BOM
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (error) {
    const offset = /position (\d+)/.exec((error as Error).message)?.[1];
    throw new ConfigError(
      'CONFIG_FILE',
      `${file} is not valid JSON${offset ? ` (at character ${offset})` : ''}`,
    );
  }
  // JSON.parse keeps the last of two equal keys without a word (YAML refuses them).
  const duplicate = findDuplicateKey(json);
  if (duplicate) {
    throw new ConfigError(
      'CONFIG_FILE',
      `${file} has the key ${shown(duplicate.key)} twice (line ${duplicate.line}, column ${duplicate.column})`,
    );
  }
  return parsed;
}

function parseYamlText(file: string, text: string): unknown {
  const at = (linePos?: { line: number; col: number }[]) =>
    linePos?.[0] ? ` (line ${linePos[0].line}, column ${linePos[0].col})` : '';
  try {
    // parseDocument, not parse: parse() prints warnings, source line included, to stderr.
    const doc = parseDocument(text, { logLevel: 'silent', uniqueKeys: true });
    const [error] = doc.errors;
    if (error)
      throw new ConfigError('CONFIG_FILE', `${file} is not valid YAML${at(error.linePos)}`);
    // Unresolved tags (`apiKey: !secret x`) would silently become plain strings.
    const [warning] = doc.warnings;
    if (warning) {
      throw new ConfigError(
        'CONFIG_FILE',
        `${file} uses an unsupported YAML tag or form${at(warning.linePos)}`,
      );
    }
    return doc.toJS({ maxAliasCount: 100 });
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    // Alias bombs (ReferenceError), nesting too deep for the stack (RangeError).
    throw new ConfigError('CONFIG_FILE', `${file} is not valid YAML (${(error as Error).name})`);
  }
}

/**
 * The first key that occurs twice in one object of `text`, which must be valid JSON: a scan over
 * the tokens, since JSON.parse (reviver included) never sees the earlier of two equal keys.
 */
function findDuplicateKey(text: string): { key: string; line: number; column: number } | null {
  const open: (Set<string> | null)[] = []; // per open object its keys; null for an array
  let expectKey = false;
  for (let i = 0; i < text.length; i += 1) {
    const char = text[i];
    if (char === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      const keys = open.at(-1);
      if (keys && expectKey) {
        const key = JSON.parse(text.slice(i, end + 1)) as string;
        if (keys.has(key)) {
          const lineStart = text.lastIndexOf('\n', i) + 1;
          const line = text.slice(0, lineStart).split('\n').length;
          return { key, line, column: i - lineStart + 1 };
        }
        keys.add(key);
        expectKey = false;
      }
      i = end;
    } else if (char === '{') {
      open.push(new Set());
      expectKey = true;
    } else if (char === '[') {
      open.push(null);
    } else if (char === '}' || char === ']') {
      open.pop();
      expectKey = false;
    } else if (char === ',') {
      expectKey = open.at(-1) != null;
    }
  }
  return null;
}

function describeIssue(
  issue: z.core.$ZodIssue,
  labels: Map<string, string>,
  secrets: readonly string[],
): ConfigError {
  const labelOf = (key: string) =>
    labels.get(key) ?? Object.entries(ENV_SETTINGS).find(([, [k]]) => k === key)?.[0];
  const [key, ...rest] = issue.path;
  const label = labelOf(typeof key === 'string' ? key : '') ?? (labels.get('') || 'config');
  const where =
    rest.length > 0
      ? ` (item ${rest.map((p) => (typeof p === 'number' ? p + 1 : String(p))).join('.')})`
      : '';
  const other =
    issue.code === 'custom' ? (issue.params?.['other'] as string | undefined) : undefined;
  let problem = other
    ? issue.message.replaceAll('{other}', labelOf(other) ?? other)
    : issue.message;
  // No message quotes a secret today; this keeps it so for any message to come.
  for (const secret of secrets) problem = problem.replaceAll(secret, '***');
  return new ConfigError(`${label}${where}`, problem);
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

export interface LoadOptions {
  /**
   * Read this file whether or not it exists now: a reload passes the `configFile` of the config
   * loaded at start, so a file that went missing (or empty) is an error rather than an empty
   * run list. Without it the default file is read only if it exists.
   */
  requireFile?: string | null;
}

/**
 * Builds the configuration: defaults, then the config file, then env (env wins).
 * Throws ConfigError naming the first bad setting as the user spelled it.
 */
export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  cwd = process.cwd(),
  options: LoadOptions = {},
): Config {
  const explicitFile = options.requireFile ?? env['CONFIG_FILE']?.trim();
  const defaultFile = path.resolve(cwd, DEFAULT_CONFIG_FILE);
  const configFile = explicitFile
    ? path.resolve(cwd, explicitFile)
    : existsSync(defaultFile)
      ? defaultFile
      : null;

  // No prototype: a file key "__proto__" must be an unknown key, not the object's prototype.
  const raw: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  const labels = new Map<string, string>();
  const secrets = new Set<string>();
  const fileSettings = configFile !== null ? readConfigFile(configFile) : {};
  if (configFile !== null) {
    const relative = path.relative(cwd, configFile) || configFile;
    labels.set('', relative);
    for (const [key, value] of Object.entries(fileSettings)) {
      raw[key] = value;
      labels.set(key, `${relative}: ${key}`);
      if (SECRET_SETTINGS.has(key) && typeof value === 'string') secrets.add(value.trim());
    }
  }
  for (const [name, [key, kind]] of Object.entries(ENV_SETTINGS)) {
    const value = env[name];
    if (value === undefined || (value.trim() === '' && kind !== 'string')) continue;
    raw[key] = fromEnv(value, kind);
    labels.set(key, name);
    if (SECRET_SETTINGS.has(key)) secrets.add(value.trim());
  }
  // Run IDs are the one list that is merged rather than overridden: env names a few runs,
  // the file holds the long, live list (re-read on change), and both are watched.
  const fileRunIds = fileSettings['watchRunIds'];
  const envRunCount =
    labels.get('watchRunIds') === 'WATCH_RUN_IDS' && Array.isArray(raw['watchRunIds'])
      ? raw['watchRunIds'].length
      : 0;
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
    throw first
      ? describeIssue(
          first,
          labels,
          [...secrets].filter((secret) => secret.length >= 4),
        )
      : new ConfigError('config', 'is invalid');
  }
  const { webhookUrls: _urls, webhooks: _hooks, watchRunIds, ...rest } = result.data;
  return Object.freeze({
    ...rest,
    watchRunIds: Object.freeze([...new Set(watchRunIds)]),
    runSources: runSources(watchRunIds, envRunCount),
    receivers: Object.freeze(
      mergeReceivers(result.data, labels.get('webhookUrls') === 'WEBHOOK_URLS'),
    ),
    configFile,
  });
}

/** The env's runs come first in the merged list; a run listed by both is the env's. */
function runSources(runIds: readonly string[], envCount: number): Map<string, 'env' | 'file'> {
  const sources = new Map<string, 'env' | 'file'>();
  runIds.forEach((runId, i) => {
    if (!sources.has(runId)) sources.set(runId, i < envCount ? 'env' : 'file');
  });
  return sources;
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
