import { pino, type DestinationStream, type Logger } from 'pino';
import { clip } from './util/text.js';

export const EVENTS = [
  'watcher.started',
  'watcher.stopped',
  'watcher.api_key_refused',
  'watcher.api_key_accepted',
  'run.added',
  'run.removed',
  'run.status_changed',
  'run.unknown_status',
  'run.field_invalid',
  'run.progress',
  'run.finished',
  'run.not_found',
  'run.watch_timeout',
  'poll.failed',
  'webhook.delivered',
  'webhook.retrying',
  'webhook.dead_lettered',
  'webhook.receiver_disabled',
  'config.reloaded',
  'config.reload_failed',
  'store.pruned',
  'discovery.started',
  'discovery.failed',
  'discovery.recovered',
  'discovery.items_invalid',
] as const;
export type EventName = (typeof EVENTS)[number];
export type EventLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug';

/** One event: a fixed message per kind, the variable parts as fields. */
export interface WatchEvent {
  level: EventLevel;
  event: EventName;
  runId: string | null;
  msg: string;
  fields?: Record<string, unknown>;
}

export interface LoggerOptions {
  level: string;
  format: 'json' | 'pretty';
  /** Values that must never be written (API key, webhook secret), wherever they appear. */
  secrets: readonly string[];
  destination?: DestinationStream;
}

const REDACTED = '[REDACTED]';

/**
 * JSON lines with a string `level` and an ISO `time`. Secrets are removed twice: known paths
 * are redacted, and every line is scrubbed of the secret values before it is written, so a
 * secret inside an error message or a nested object cannot slip through.
 */
export function createLogger(options: LoggerOptions): Logger {
  const secrets = options.secrets.filter((s) => s.length >= 4);
  const scrub = (line: string) =>
    secrets.reduce((text, secret) => text.replaceAll(secret, REDACTED), line);
  const base = {
    level: options.level,
    base: null,
    messageKey: 'msg',
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
    redact: {
      paths: [
        'apiKey',
        'webhookSecret',
        '*.authorization',
        '*.headers.authorization',
        'err.options',
      ],
      censor: REDACTED,
    },
    hooks: { streamWrite: scrub },
  };
  if (options.format === 'pretty' && !options.destination) {
    return pino({
      ...base,
      transport: {
        target: 'pino-pretty',
        options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', singleLine: true },
      },
    });
  }
  return pino(base, options.destination ?? pino.destination({ sync: true }));
}

/** How deep `boundStrings` looks; event fields are a few levels deep at most. */
const MAX_FIELD_DEPTH = 6;

/** A last guard, whatever a caller put in the fields: no string in a line is longer than MAX_TEXT_CHARS. */
function boundStrings(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return clip(value);
  if (depth >= MAX_FIELD_DEPTH || typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map((item) => boundStrings(item, depth + 1));
  if (Object.getPrototypeOf(value) !== Object.prototype) return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, item]) => [key, boundStrings(item, depth + 1)]),
  );
}

export function logEvent(logger: Logger, event: WatchEvent): void {
  logger[event.level](
    { event: event.event, run_id: event.runId, ...(boundStrings(event.fields ?? {}) as object) },
    event.msg,
  );
}
