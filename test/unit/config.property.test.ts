import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { stringify as toYaml } from 'yaml';
import { ConfigError, ENV_SETTINGS, loadConfig } from '../../src/config/load.js';

/**
 * Whatever the config file and env hold, loadConfig gives a frozen Config or a one-line
 * ConfigError that quotes no secret: never another exception, never a hang.
 */

const API_KEY = 'planted-api-key-Zq81';
const URL_PASSWORD = 'planted-url-password-Zq81';
const URL_QUERY = 'planted-url-query-Zq81';
const BAD_WEBHOOK_SECRET = 'whsec_planted-bad-secret-Zq81';
const GOOD_WEBHOOK_SECRET = `whsec_${Buffer.alloc(32, 0x5a).toString('base64')}`;
const PLANTED = [API_KEY, URL_PASSWORD, URL_QUERY, BAD_WEBHOOK_SECRET, GOOD_WEBHOOK_SECRET];

const goodUrl = fc.constantFrom(
  'http://127.0.0.1:9/hook',
  `https://user:${URL_PASSWORD}@hooks.example/in?token=${URL_QUERY}`,
  `http://hooks.example/in?token=${URL_QUERY}#${URL_QUERY}`,
);
const badUrl = fc.constantFrom(
  `ftp://user:${URL_PASSWORD}@host.example/x`,
  `user:${URL_PASSWORD}@host.example`,
  `gopher://${URL_PASSWORD}@host.example/?${URL_QUERY}`,
  `http://user:${URL_PASSWORD}@/nohost?${URL_QUERY}`,
);
const goodCron = fc.constantFrom('*/5 * * * * *', '0 */10 * * * *', '* * * * * *');
// One that never fires costs cron an 8-year search (~5 ms): rare enough to stay fast.
const badCron = fc.constantFrom('0 0 0 31 2 *', '* * banana', '61 * * * * *', '');
const badMs = fc.constantFrom(0, -1, 2 ** 31, 3e9, 30 * 86_400_000, 2 ** 53 + 2, 1.5, 1e308);
const ms = (min: number, max: number) => fc.integer({ min, max });

/** Valid settings (each key present or not), with secrets where secrets belong. */
const settings = fc.record(
  {
    apiKey: fc.constant(API_KEY),
    baseUrl: goodUrl,
    watchRunIds: fc.array(fc.uuid(), { minLength: 1, maxLength: 3 }),
    webhookUrls: fc.array(goodUrl, { maxLength: 2 }),
    webhooks: fc.array(
      fc.record(
        {
          url: goodUrl,
          timeoutMs: ms(1, 10_000),
          retryScheduleMs: fc.array(ms(1, 86_400_000), { maxLength: 20 }),
        },
        { requiredKeys: ['url'] },
      ),
      { maxLength: 2 },
    ),
    webhookSecret: fc.constant(GOOD_WEBHOOK_SECRET),
    pollCron: goodCron,
    pollMinIntervalMs: ms(1, 5_000),
    pollMaxIntervalMs: ms(60_000, 86_400_000),
    pollPolicy: fc.constantFrom('adaptive', 'fixed', 'exponential'),
    requestTimeoutMs: ms(1, 10_000),
    webhookTimeoutMs: ms(1, 10_000),
    shutdownGraceMs: ms(15_000, 600_000),
    maxWatchMs: ms(7 * 86_400_000, 24 * 86_400_000),
    notFoundAfterMs: ms(1, 7 * 86_400_000 - 1),
    retentionDays: ms(1, 3650),
    logLevel: fc.constantFrom('info', 'debug'),
    exitWhenDone: fc.boolean(),
  },
  { requiredKeys: ['apiKey', 'webhookSecret'] },
);

/** Wrong types, huge, negative and NaN-ish values, bad URLs and crons, nested junk. */
const junk = fc.oneof(
  fc.anything({ maxDepth: 2, maxKeys: 3 }),
  fc.double(),
  badMs,
  badUrl,
  badCron,
  fc.constantFrom('NaN', '12abc', '', ' ', null, true, [], {}, [[[[[]]]]], [badUrl]),
  fc.string({ unit: 'binary', maxLength: 20 }),
);
const key = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...Object.values(ENV_SETTINGS).map(([k]) => k)) },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
);
/** Valid settings with up to 3 keys changed to junk or dropped. */
const mutated = fc
  .tuple(
    settings,
    fc.oneof(
      fc.constant([]),
      fc.array(fc.tuple(key, fc.option(junk, { nil: undefined })), { minLength: 1, maxLength: 3 }),
    ),
  )
  .map(([base, changes]) => {
    const out: Record<string, unknown> = { ...base };
    for (const [name, value] of changes) {
      if (value === undefined) delete out[name];
      else out[name] = value;
    }
    return out;
  });

/** Text-level damage: a repeated key, or garbage bytes (invalid UTF-8 included). */
const damage = fc.oneof(
  { weight: 6, arbitrary: fc.constant({ kind: 'none' as const }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('duplicate' as const), key, value: junk }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('garbage' as const),
      at: fc.nat(),
      cut: fc.nat({ max: 20 }),
      bytes: fc.uint8Array({ maxLength: 12 }),
      truncate: fc.boolean(),
    }),
  },
);

type Damage =
  | { kind: 'none' }
  | { kind: 'duplicate'; key: string; value: unknown }
  | { kind: 'garbage'; at: number; cut: number; bytes: Uint8Array; truncate: boolean };

function fileText(format: 'json' | 'yaml', body: Record<string, unknown>, hurt: Damage): Buffer {
  let text = format === 'json' ? JSON.stringify(body, null, 1) : toYaml(body);
  if (hurt.kind === 'duplicate') {
    const member = { [hurt.key]: hurt.value };
    // A whole extra member, as the first key (JSON) or the last line (YAML): values stay values.
    text =
      format === 'json'
        ? text.replace('{', `{${JSON.stringify(member).slice(1, -1)},`)
        : `${text}\n${toYaml(member)}`;
  }
  if (hurt.kind !== 'garbage') return Buffer.from(text);
  // Garbage can turn any text into a key or a quoted value, so it gets a file without secrets.
  for (const secret of PLANTED) text = text.replaceAll(secret, 'not-a-secret');
  const bytes = Buffer.from(text);
  const at = bytes.length === 0 ? 0 : hurt.at % bytes.length;
  return hurt.truncate
    ? bytes.subarray(0, at)
    : Buffer.concat([bytes.subarray(0, at), hurt.bytes, bytes.subarray(at + hurt.cut)]);
}

/** A value for one env setting: good, bad, or any text. */
function envValue(name: string): fc.Arbitrary<string> {
  const any = fc.oneof(
    badMs.map(String),
    fc.constantFrom('true', 'maybe', '1e3', '-0', '99999999999999999999', '5000,abc'),
    fc.string({ maxLength: 10 }),
  );
  const good: Partial<Record<string, fc.Arbitrary<string>>> = {
    DATAFRAMER_API_KEY: fc.constantFrom(API_KEY, '', ' '),
    WEBHOOK_SECRET: fc.constantFrom(GOOD_WEBHOOK_SECRET, BAD_WEBHOOK_SECRET),
    WEBHOOK_URLS: fc.array(fc.oneof(goodUrl, badUrl), { minLength: 1, maxLength: 2 }).map(String),
    DATAFRAMER_BASE_URL: fc.oneof(goodUrl, badUrl),
    POLL_CRON: fc.oneof(goodCron, badCron),
    WATCH_RUN_IDS: fc.array(fc.uuid(), { maxLength: 2 }).map((ids) => ids.join(' ')),
    ...Object.fromEntries(
      Object.entries({
        POLL_MIN_INTERVAL_MS: '1000',
        POLL_MAX_INTERVAL_MS: '60000',
        POLL_POLICY: 'fixed',
        POLL_CONCURRENCY: '4',
        POLL_RATE_PER_SECOND: '10',
        REQUEST_TIMEOUT_MS: '5000',
        NOT_FOUND_AFTER_MS: '60000',
        MAX_WATCH_MS: String(24 * 86_400_000),
        WEBHOOK_TIMEOUT_MS: '5000',
        WEBHOOK_RETRY_SCHEDULE_MS: '100, 200',
        STATE_DIR: ':memory:',
        HTTP_HOST: '127.0.0.1',
        HTTP_PORT: '0',
        LOG_LEVEL: 'warn',
        LOG_FORMAT: 'pretty',
        EXIT_WHEN_DONE: 'no',
        SHUTDOWN_GRACE_MS: '20000',
        RETENTION_DAYS: '7',
      }).map(([name, value]) => [name, fc.constant(value)]),
    ),
  };
  return fc.oneof({ weight: 3, arbitrary: good[name] ?? any }, any);
}

/** The API key (or not) and a few env settings: the rest comes from defaults and the file. */
const env = fc
  .tuple(
    fc.option(fc.constantFrom(API_KEY, API_KEY, API_KEY, '', ' '), { nil: undefined }),
    fc.uniqueArray(fc.constantFrom(...Object.keys(ENV_SETTINGS)), { maxLength: 2 }),
  )
  .chain(([apiKey, names]) =>
    fc
      .record(Object.fromEntries(names.map((name) => [name, envValue(name)])))
      .map((vars) => (apiKey === undefined ? vars : { DATAFRAMER_API_KEY: apiKey, ...vars })),
  );

const world = fc.record({
  format: fc.constantFrom('json' as const, 'yaml' as const),
  file: fc.oneof(
    { weight: 4, arbitrary: mutated },
    { weight: 1, arbitrary: fc.constant(null) }, // no config file at all
  ),
  damage,
  env,
});

describe('loadConfig on random and damaged input (property)', () => {
  it('gives a frozen Config or a one-line ConfigError without secrets, 10,000 times', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'watcher-config-property-'));
    const seen = { valid: 0, invalid: 0 };
    fc.assert(
      fc.property(world, ({ format, file, damage: hurt, env: vars }) => {
        const fullEnv: Record<string, string> = { ...(vars as Record<string, string>) };
        if (file !== null) {
          const name = `watcher.${format}`;
          writeFileSync(path.join(dir, name), fileText(format, file, hurt));
          fullEnv['CONFIG_FILE'] = name;
        }
        const started = performance.now();
        let outcome: unknown;
        try {
          outcome = loadConfig(fullEnv, dir);
        } catch (error) {
          outcome = error;
        }
        // Plain checks, not expect(): this runs 10,000 times; fast-check reports what failed.
        if (performance.now() - started > 1_000) throw new Error('took over 1 s');
        if (outcome instanceof ConfigError) {
          seen.invalid += 1;
          for (const text of [outcome.message, outcome.setting, outcome.problem]) {
            if (/[\p{Cc}\u2028\u2029]/u.test(text)) throw new Error(`not one line: ${text}`);
            const secret = PLANTED.find((planted) => text.includes(planted));
            if (secret) throw new Error(`quotes ${secret}: ${text}`);
          }
        } else if (outcome instanceof Error) {
          throw outcome;
        } else {
          seen.valid += 1;
          if (!Object.isFrozen(outcome)) throw new Error('config not frozen');
        }
      }),
      { numRuns: 10_000 },
    );
    // Both outcomes are exercised, not just the error path.
    expect(seen.valid).toBeGreaterThan(500);
    expect(seen.invalid).toBeGreaterThan(500);
  });
});
