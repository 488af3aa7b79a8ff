import { describe, expect, it } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startWatcher } from '../helpers/watcher-process.js';

const KEY = 'df_secret_key_for_config_tests';
const SECRET = `whsec_${Buffer.alloc(32, 1).toString('base64')}`;
const RUN = '3c90c3cc-0d44-4b50-8888-8dd25736052a';
/** Secrets planted in the cases below: none may show on stderr or stdout. */
const PLANTED = [
  KEY,
  SECRET,
  'url-password-1',
  'df_tagged_SECRET',
  'df_dup_SECRET_1',
  'df_dup_SECRET_2',
];
/** Loopback and any port: a case the old code accepted must not hold 0.0.0.0:8080. */
const LOCAL = { HTTP_HOST: '127.0.0.1', HTTP_PORT: '0' };
const cwd = mkdtempSync(path.join(tmpdir(), 'watcher-bad-config-'));
writeFileSync(path.join(cwd, 'broken.yaml'), 'watchRunIds: [unclosed');
writeFileSync(path.join(cwd, 'tagged.yaml'), 'apiKey: !secret df_tagged_SECRET\n');
writeFileSync(
  path.join(cwd, 'dup.json'),
  '{\n  "apiKey": "df_dup_SECRET_1",\n  "apiKey": "df_dup_SECRET_2"\n}\n',
);

/** A valid API key beside `env`: the one thing wrong is in `env`. */
const keyed = (env: Record<string, string>) => ({ DATAFRAMER_API_KEY: KEY, ...env });

const cases: [string, Record<string, string>, string][] = [
  ['missing API key', {}, 'DATAFRAMER_API_KEY'],
  ['bad run UUID', keyed({ WATCH_RUN_IDS: `${RUN},12345` }), 'WATCH_RUN_IDS (item 2)'],
  ['bad base URL', keyed({ DATAFRAMER_BASE_URL: 'not a url' }), 'DATAFRAMER_BASE_URL'],
  [
    'bad webhook URL',
    keyed({ WEBHOOK_URLS: 'mailto:x@y', WEBHOOK_SECRET: SECRET }),
    'WEBHOOK_URLS (item 1)',
  ],
  ['bad cron', keyed({ POLL_CRON: '61 * * * * *' }), 'POLL_CRON'],
  [
    'bad webhook secret',
    keyed({ WEBHOOK_URLS: 'http://127.0.0.1:9/h', WEBHOOK_SECRET: 'plain-text-secret' }),
    'WEBHOOK_SECRET',
  ],
  ['receiver without secret', keyed({ WEBHOOK_URLS: 'http://127.0.0.1:9/h' }), 'WEBHOOK_SECRET'],
  ['min above max', keyed({ POLL_MIN_INTERVAL_MS: '70000' }), 'POLL_MIN_INTERVAL_MS'],
  ['interval not a number', keyed({ POLL_MAX_INTERVAL_MS: '1m' }), 'POLL_MAX_INTERVAL_MS'],
  ['zero max watch', keyed({ MAX_WATCH_MS: '0' }), 'MAX_WATCH_MS'],
  ['bad port', keyed({ HTTP_PORT: '99999' }), 'HTTP_PORT'],
  ['bad log level', keyed({ LOG_LEVEL: 'verbose' }), 'LOG_LEVEL'],
  ['bad exit flag', keyed({ EXIT_WHEN_DONE: 'sometimes' }), 'EXIT_WHEN_DONE'],
  ['missing config file', keyed({ CONFIG_FILE: 'nope.json' }), 'CONFIG_FILE'],
  ['unparsable config file', keyed({ CONFIG_FILE: 'broken.yaml' }), 'CONFIG_FILE'],
  [
    'retry delay of 30 days',
    keyed({ WEBHOOK_RETRY_SCHEDULE_MS: '5000,2592000000' }),
    'WEBHOOK_RETRY_SCHEDULE_MS (item 2)',
  ],
  ['grace above 2^31 ms', keyed({ SHUTDOWN_GRACE_MS: '3000000000' }), 'SHUTDOWN_GRACE_MS'],
  [
    'webhook timeout longer than the grace',
    keyed({ WEBHOOK_TIMEOUT_MS: '20000' }),
    'SHUTDOWN_GRACE_MS',
  ],
  ['cron that never fires', keyed({ POLL_CRON: '0 0 0 31 2 *' }), 'POLL_CRON'],
  [
    'password in a webhook URL',
    keyed({ WEBHOOK_URLS: 'ftp://user:url-password-1@host.example/x', WEBHOOK_SECRET: SECRET }),
    'WEBHOOK_URLS (item 1)',
  ],
  ['YAML custom tag', { ...LOCAL, CONFIG_FILE: 'tagged.yaml' }, 'CONFIG_FILE'],
  ['JSON duplicate key', { ...LOCAL, CONFIG_FILE: 'dup.json' }, 'CONFIG_FILE'],
  ['retention of 0 days', keyed({ ...LOCAL, RETENTION_DAYS: '0' }), 'RETENTION_DAYS'],
  ['exit when done, no runs', keyed({ EXIT_WHEN_DONE: 'true' }), 'EXIT_WHEN_DONE'],
];

/**
 * The exit code, or 'still running' (a config the program wrongly accepted) after 15 s; then
 * the child is killed here, since afterEach hooks do not wait on concurrent tests.
 */
async function exitOrRunning(watcher: ReturnType<typeof startWatcher>) {
  const outcome = await Promise.race([
    watcher.exited,
    new Promise<string>((resolve) => setTimeout(resolve, 15_000, 'still running').unref()),
  ]);
  if (outcome === 'still running') {
    watcher.kill('SIGKILL');
    await watcher.exited;
  }
  return outcome;
}

describe('end to end: bad configuration', () => {
  it.concurrent.each(cases)(
    '%s: exit 78 with one line naming the setting',
    async (_name, env, setting) => {
      const watcher = startWatcher(env, { cwd });
      expect(await exitOrRunning(watcher)).toBe(78);
      const lines = watcher.stderr().trimEnd().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(
        new RegExp(
          `^dataframer-run-watcher: invalid configuration: ${setting.replace(/[()]/g, '\\$&')}: \\S`,
        ),
      );
      expect(watcher.stdout()).toBe('');
      for (const secret of PLANTED) expect(watcher.stderr()).not.toContain(secret);
    },
  );
});
