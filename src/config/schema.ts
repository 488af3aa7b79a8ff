import { validateCronExpression } from 'cron';
import { z } from 'zod';
import { POLL_POLICIES } from '../watch/poll-policy.js';

/** Svix-like delivery schedule: delays before attempts 2..8, each later jittered ±20%. */
export const DEFAULT_WEBHOOK_RETRY_SCHEDULE_MS = [
  5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000,
];

const DAY_MS = 24 * 60 * 60 * 1000;

export const RunId = z
  .guid({ error: (issue) => `must be a UUID, got ${JSON.stringify(issue.input)}` })
  .transform((id) => id.toLowerCase());

// z.url, not z.httpUrl: the latter refuses IP hosts such as 127.0.0.1 and cluster-local names.
const HttpUrl = z.url({
  protocol: /^https?$/,
  error: (issue) => `must be an http(s) URL, got ${JSON.stringify(issue.input)}`,
});

const Millis = z.int({ error: 'must be a whole number of milliseconds' }).positive({
  error: 'must be greater than 0',
});

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

const CronExpression = z.string().refine((value) => validateCronExpression(value).valid, {
  error: (issue) => `is not a valid cron expression: ${JSON.stringify(issue.input)}`,
});

export const Receiver = z.strictObject({
  url: HttpUrl,
  timeoutMs: Millis.optional(),
  retryScheduleMs: z.array(Millis).optional(),
});
export type Receiver = z.infer<typeof Receiver>;

/** Every setting, camelCase as in the config file; env names are mapped in `load.ts`. */
export const Settings = z
  .strictObject({
    apiKey: z.string({ error: 'is required' }).min(1, { error: 'must not be empty' }),
    baseUrl: HttpUrl.default('https://df-api.dataframer.ai'),
    watchRunIds: z.array(RunId).default([]),
    webhookUrls: z.array(HttpUrl).default([]),
    webhooks: z.array(Receiver).default([]),
    webhookSecret: WebhookSecret.optional(),
    pollCron: CronExpression.default('*/5 * * * * *'),
    pollMinIntervalMs: Millis.default(5_000),
    pollMaxIntervalMs: Millis.default(60_000),
    pollPolicy: z.enum(POLL_POLICIES).default('adaptive'),
    pollConcurrency: z.int().min(1).max(256).default(8),
    pollRatePerSecond: z.number().positive().max(10_000).default(20),
    requestTimeoutMs: Millis.default(10_000),
    notFoundAfterMs: Millis.default(10 * 60_000),
    maxWatchMs: Millis.default(7 * DAY_MS),
    webhookTimeoutMs: Millis.default(15_000),
    webhookRetryScheduleMs: z.array(Millis).default(DEFAULT_WEBHOOK_RETRY_SCHEDULE_MS),
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
    shutdownGraceMs: Millis.default(10_000),
  })
  .superRefine((settings, ctx) => {
    if (settings.pollMinIntervalMs > settings.pollMaxIntervalMs) {
      ctx.addIssue({
        code: 'custom',
        path: ['pollMinIntervalMs'],
        message: `must not exceed pollMaxIntervalMs (${settings.pollMaxIntervalMs})`,
      });
    }
    const hasReceivers = settings.webhookUrls.length + settings.webhooks.length > 0;
    if (hasReceivers && settings.webhookSecret === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['webhookSecret'],
        message: 'is required when a webhook receiver is configured',
      });
    }
  });
export type Settings = z.infer<typeof Settings>;

/** The validated, frozen configuration the rest of the program reads. */
export interface Config extends Omit<Settings, 'webhookUrls' | 'webhooks' | 'watchRunIds'> {
  readonly watchRunIds: readonly string[];
  /** webhookUrls and webhooks merged, one entry per distinct URL. */
  readonly receivers: readonly Receiver[];
  /** Where the config file was read from, if any. */
  readonly configFile: string | null;
}
