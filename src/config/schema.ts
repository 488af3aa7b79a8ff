import { CronTime } from 'cron';
import { z } from 'zod';
import { MAX_RUN_BODY_BYTES } from '../dataframer/client.js';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** Svix-like delivery schedule: delays before attempts 2..8, each later jittered ±20%. */
/** POLL_POLICY: `adaptive` (the default), or the baselines it is measured against (docs/polling.md). */
export const POLL_POLICIES = ['adaptive', 'fixed', 'exponential'] as const;
export type PollPolicy = (typeof POLL_POLICIES)[number];

export const DEFAULT_WEBHOOK_RETRY_SCHEDULE_MS = [
  5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000,
];

/**
 * Upper bounds of the duration settings (README, "Settings"). Node timers hold at most
 * 2^31-1 ms (~24.8 days) and fire after 1 ms beyond that, so no bound may exceed it.
 */
export const LIMITS = {
  pollIntervalMs: DAY,
  timeoutMs: 10 * MINUTE,
  retryDelayMs: DAY,
  retryAttempts: 20,
  shutdownGraceMs: 10 * MINUTE,
  maxWatchMs: 24 * DAY,
  notFoundAfterMs: 7 * DAY,
  retentionDays: 3650,
  /** The run API: run IDs per POST, runs per page (docs/api.md). */
  runsPerCall: 10_000,
  runsPerPage: 500,
  /** ADMIN_TOKEN's shortest length. */
  adminTokenChars: 32,
} as const;

/** Settings whose values are never shown, in any message. */
export const SECRET_SETTINGS: ReadonlySet<string> = new Set([
  'apiKey',
  'webhookSecret',
  'adminToken',
]);

/**
 * A URL as an error may show it: userinfo, query and fragment can hold credentials, so they
 * become `***`. Works on text that is no valid URL too (`user:pass@host`), erring on hiding more.
 */
export function redactCredentials(text: string): string {
  let out = text.replace(/[?#][^]*$/, '?***');
  const at = out.lastIndexOf('@');
  if (at >= 0) {
    const scheme = /^\s*[a-z][a-z\d+.-]*:[\\/]*/i.exec(out)?.[0] ?? '';
    out = `${scheme.length <= at ? scheme : ''}***${out.slice(at)}`;
  }
  return out;
}

/**
 * An input quoted for a message: one line, short, and redacted if it looks like a URL with
 * credentials, whatever setting it was written into (a URL pasted into POLL_CRON included).
 */
export function shown(input: unknown): string {
  if (typeof input !== 'string') return input === null ? 'null' : `a ${typeof input}`;
  const text = /:\/\/|^[^\s@/]+:[^\s@]*@/.test(input) ? redactCredentials(input) : input;
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);
}

export const RunId = z
  .guid({ error: (issue) => `must be a UUID, got ${shown(issue.input)}` })
  .transform((id) => id.toLowerCase());

// z.url, not z.httpUrl: the latter refuses IP hosts such as 127.0.0.1 and cluster-local names.
export const HttpUrl = z.url({
  protocol: /^https?$/,
  error: (issue) => `must be an http(s) URL, got ${shown(issue.input)}`,
});

function humanMs(ms: number): string {
  if (ms % DAY === 0) return ms === DAY ? '1 day' : `${ms / DAY} days`;
  if (ms % HOUR === 0) return `${ms / HOUR} h`;
  if (ms % MINUTE === 0) return `${ms / MINUTE} min`;
  return `${ms} ms`;
}

/** A duration in whole milliseconds, at most `max`. */
function millis(max: number) {
  return z
    .int({ error: 'must be a whole number of milliseconds' })
    .positive({ error: 'must be greater than 0' })
    .max(max, { error: `must be at most ${max} (${humanMs(max)})` });
}

const PollInterval = millis(LIMITS.pollIntervalMs);
const Timeout = millis(LIMITS.timeoutMs);
const RetrySchedule = z
  .array(millis(LIMITS.retryDelayMs))
  .max(LIMITS.retryAttempts, { error: `must have at most ${LIMITS.retryAttempts} delays` });

/** Standard Webhooks secrets are `whsec_` followed by base64 of 24 to 64 random bytes. */
const WebhookSecret = z.string().refine(
  (value) => {
    const match = /^whsec_([A-Za-z0-9+/]+={0,2})$/.exec(value);
    if (!match?.[1]) return false;
    const bytes = Buffer.from(match[1], 'base64').length;
    return bytes >= 24 && bytes <= 64;
  },
  { error: 'must be "whsec_" followed by base64 of 24 to 64 bytes' },
);

/**
 * What is wrong with a cron expression, if anything. A valid one can still never match
 * (`0 0 0 31 2 *`) and the scheduler would crash at start, so it must fire within a year
 * (a tick rarer than that is no poll tick either).
 */
function cronProblem(expression: string): string | null {
  let time: CronTime;
  try {
    time = new CronTime(expression);
  } catch {
    return `is not a valid cron expression: ${shown(expression)}`;
  }
  const never = `never fires: no time within a year matches ${shown(expression)}`;
  try {
    const now = new Date();
    return time.getNextDateFrom(now).toMillis() - now.getTime() <= 366 * DAY ? null : never;
  } catch {
    return never; // cron gives up after 8 years without a match
  }
}

const CronExpression = z.string().superRefine((value, ctx) => {
  const problem = cronProblem(value);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

/** Keys only, quoted and clipped: a mangled file can turn any text into a key. */
const unknownKeys = {
  error: (issue: z.core.$ZodRawIssue) =>
    issue.code === 'unrecognized_keys'
      ? `unknown setting ${issue.keys.map((key) => shown(key)).join(', ')}`
      : undefined,
};

export const Receiver = z.strictObject(
  {
    url: HttpUrl,
    timeoutMs: Timeout.optional(),
    retryScheduleMs: RetrySchedule.optional(),
  },
  unknownKeys,
);
export type Receiver = z.infer<typeof Receiver>;

/**
 * A rule between two settings. `{other}` in the message is replaced (load.ts) by the other
 * setting as the user wrote it, e.g. `WEBHOOK_TIMEOUT_MS` or `watcher.json: webhookTimeoutMs`.
 */
function conflict(
  ctx: z.RefinementCtx,
  path: (string | number)[],
  other: string,
  message: string,
): void {
  ctx.addIssue({ code: 'custom', path, message, params: { other } });
}

/** Every setting, camelCase as in the config file; env names are mapped in `load.ts`. */
export const Settings = z
  .strictObject(
    {
      apiKey: z.string({ error: 'is required' }).min(1, { error: 'must not be empty' }),
      baseUrl: HttpUrl.default('https://df-api.dataframer.ai'),
      watchRunIds: z.array(RunId).default([]),
      webhookUrls: z.array(HttpUrl).default([]),
      webhooks: z.array(Receiver).default([]),
      webhookSecret: WebhookSecret.optional(),
      pollCron: CronExpression.default('*/5 * * * * *'),
      pollMinIntervalMs: PollInterval.default(5_000),
      pollMaxIntervalMs: PollInterval.default(60_000),
      pollPolicy: z.enum(POLL_POLICIES).default('adaptive'),
      pollConcurrency: z.int().min(1).max(256).default(8),
      pollRatePerSecond: z.number().positive().max(10_000).default(20),
      requestTimeoutMs: Timeout.default(10_000),
      // A run's body is a few kB plus about 100 bytes per generated file: 32 MiB holds some
      // 300,000 files, and a runaway body is cut off there instead of filling the memory.
      maxResponseBytes: z
        .int({ error: 'must be a whole number of bytes' })
        .min(65_536, { error: 'must be at least 65536 (64 KiB)' })
        .max(268_435_456, { error: 'must be at most 268435456 (256 MiB)' })
        .default(MAX_RUN_BODY_BYTES),
      notFoundAfterMs: millis(LIMITS.notFoundAfterMs).default(10 * MINUTE),
      maxWatchMs: millis(LIMITS.maxWatchMs).default(7 * DAY),
      // Shorter than the shutdown grace, so a delivery in flight at SIGTERM can finish.
      webhookTimeoutMs: Timeout.default(10_000),
      webhookRetryScheduleMs: RetrySchedule.default(DEFAULT_WEBHOOK_RETRY_SCHEDULE_MS),
      // Fractions are allowed (0.5 is 12 hours); below a minute nothing finished would stay.
      retentionDays: z
        .number({ error: 'must be a number of days' })
        .min(MINUTE / DAY, { error: 'must be at least 0.0007 (one minute)' })
        .max(LIMITS.retentionDays, { error: `must be at most ${LIMITS.retentionDays}` })
        .default(30),
      stateDir: z.string().min(1).default('./data'),
      httpHost: z.string().min(1).default('0.0.0.0'),
      httpPort: z
        .int({ error: 'must be a port number from 0 to 65535' })
        .min(0)
        .max(65_535)
        .default(8080),
      logLevel: z
        .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
        .default('info'),
      logFormat: z.enum(['json', 'pretty']).default('json'),
      exitWhenDone: z.boolean({ error: 'must be true or false' }).default(false),
      shutdownGraceMs: millis(LIMITS.shutdownGraceMs).default(15_000),
      // Account discovery (docs/api.md): watch every new run the list endpoint shows.
      discoverRuns: z.boolean({ error: 'must be true or false' }).default(false),
      discoveryIntervalMs: PollInterval.default(30_000),
      discoverSince: z.iso
        .datetime({ offset: true, error: 'must be an ISO 8601 time, e.g. 2026-12-01T00:00:00Z' })
        .optional(),
      discoverSpecIds: z.array(RunId).default([]),
      discoverCreatedBy: z.array(z.email({ error: 'must be an email address' })).default([]),
      // Turns the run API on (docs/api.md); long enough that guessing it is hopeless.
      adminToken: z
        .string()
        .min(LIMITS.adminTokenChars, {
          error: `must be at least ${LIMITS.adminTokenChars} characters (openssl rand -hex 32)`,
        })
        .optional(),
    },
    unknownKeys,
  )
  .superRefine((settings, ctx) => {
    if (settings.pollMinIntervalMs > settings.pollMaxIntervalMs) {
      conflict(
        ctx,
        ['pollMinIntervalMs'],
        'pollMaxIntervalMs',
        `must not exceed {other} (${settings.pollMaxIntervalMs})`,
      );
    }
    // A run that keeps answering 404 would otherwise always end as run.watch_timeout first.
    if (settings.notFoundAfterMs >= settings.maxWatchMs) {
      conflict(
        ctx,
        ['notFoundAfterMs'],
        'maxWatchMs',
        `must be less than {other} (${settings.maxWatchMs})`,
      );
    }
    // A webhook attempt in flight at SIGTERM must be able to finish within the grace; name the
    // longest timeout. A poll need not: one cut short is simply made again after the restart.
    const [other, timeout, where] = [
      ['webhookTimeoutMs', settings.webhookTimeoutMs, ''] as const,
      ...settings.webhooks.map(
        (receiver, i) =>
          ['webhooks', receiver.timeoutMs ?? 0, ` (item ${i + 1}) timeoutMs`] as const,
      ),
    ].reduce((a, b) => (b[1] > a[1] ? b : a));
    if (timeout >= settings.shutdownGraceMs) {
      conflict(
        ctx,
        ['shutdownGraceMs'],
        other,
        `must be greater than {other}${where} (${timeout}), so what is in flight at a stop can finish`,
      );
    }
    const hasReceivers = settings.webhookUrls.length + settings.webhooks.length > 0;
    if (hasReceivers && settings.webhookSecret === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['webhookSecret'],
        message: 'is required when a webhook receiver is configured',
      });
    }
    if (settings.exitWhenDone && settings.watchRunIds.length === 0) {
      conflict(
        ctx,
        ['exitWhenDone'],
        'watchRunIds',
        'is true, but there is no run to watch ({other} is empty), so it would exit at once',
      );
    }
  });
export type Settings = z.infer<typeof Settings>;

/** The validated, frozen configuration the rest of the program reads. */
export interface Config extends Omit<Settings, 'webhookUrls' | 'webhooks' | 'watchRunIds'> {
  readonly watchRunIds: readonly string[];
  /** Each configured run with where it is listed: the env (first) or the config file. */
  readonly runSources: ReadonlyMap<string, 'env' | 'file'>;
  /** webhookUrls and webhooks merged, one entry per distinct URL. */
  readonly receivers: readonly Receiver[];
  /** Where the config file was read from, if any. */
  readonly configFile: string | null;
}
