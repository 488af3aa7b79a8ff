import { describe, expect, it } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startWatcher } from '../helpers/watcher-process.js';

const KEY = 'df_secret_key_for_config_tests';
const SECRET = `whsec_${Buffer.alloc(32, 1).toString('base64')}`;
const RUN = '3c90c3cc-0d44-4b50-8888-8dd25736052a';
const cwd = mkdtempSync(path.join(tmpdir(), 'watcher-bad-config-'));
writeFileSync(path.join(cwd, 'broken.yaml'), 'watchRunIds: [unclosed');

const cases: [string, Record<string, string>, string][] = [
  ['missing API key', {}, 'DATAFRAMER_API_KEY'],
  [
    'bad run UUID',
    { DATAFRAMER_API_KEY: KEY, WATCH_RUN_IDS: `${RUN},12345` },
    'WATCH_RUN_IDS (item 2)',
  ],
  [
    'bad base URL',
    { DATAFRAMER_API_KEY: KEY, DATAFRAMER_BASE_URL: 'not a url' },
    'DATAFRAMER_BASE_URL',
  ],
  [
    'bad webhook URL',
    { DATAFRAMER_API_KEY: KEY, WEBHOOK_URLS: 'mailto:x@y', WEBHOOK_SECRET: SECRET },
    'WEBHOOK_URLS (item 1)',
  ],
  ['bad cron', { DATAFRAMER_API_KEY: KEY, POLL_CRON: '61 * * * * *' }, 'POLL_CRON'],
  [
    'bad webhook secret',
    {
      DATAFRAMER_API_KEY: KEY,
      WEBHOOK_URLS: 'http://127.0.0.1:9/h',
      WEBHOOK_SECRET: 'plain-text-secret',
    },
    'WEBHOOK_SECRET',
  ],
  [
    'receiver without secret',
    { DATAFRAMER_API_KEY: KEY, WEBHOOK_URLS: 'http://127.0.0.1:9/h' },
    'WEBHOOK_SECRET',
  ],
  [
    'min above max',
    { DATAFRAMER_API_KEY: KEY, POLL_MIN_INTERVAL_MS: '70000' },
    'POLL_MIN_INTERVAL_MS',
  ],
  [
    'interval not a number',
    { DATAFRAMER_API_KEY: KEY, POLL_MAX_INTERVAL_MS: '1m' },
    'POLL_MAX_INTERVAL_MS',
  ],
  ['zero max watch', { DATAFRAMER_API_KEY: KEY, MAX_WATCH_MS: '0' }, 'MAX_WATCH_MS'],
  ['bad port', { DATAFRAMER_API_KEY: KEY, HTTP_PORT: '99999' }, 'HTTP_PORT'],
  ['bad log level', { DATAFRAMER_API_KEY: KEY, LOG_LEVEL: 'verbose' }, 'LOG_LEVEL'],
  ['bad exit flag', { DATAFRAMER_API_KEY: KEY, EXIT_WHEN_DONE: 'sometimes' }, 'EXIT_WHEN_DONE'],
  ['missing config file', { DATAFRAMER_API_KEY: KEY, CONFIG_FILE: 'nope.json' }, 'CONFIG_FILE'],
  [
    'unparsable config file',
    { DATAFRAMER_API_KEY: KEY, CONFIG_FILE: 'broken.yaml' },
    'CONFIG_FILE',
  ],
];

describe('end to end: bad configuration', () => {
  it.concurrent.each(cases)(
    '%s: exit 78 with one line naming the setting',
    async (_name, env, setting) => {
      const watcher = startWatcher(env, { cwd });
      expect(await watcher.exited).toBe(78);
      const lines = watcher.stderr().trimEnd().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(
        new RegExp(
          `^dataframer-run-watcher: invalid configuration: ${setting.replace(/[()]/g, '\\$&')}: \\S`,
        ),
      );
      expect(watcher.stdout()).toBe('');
      expect(watcher.stderr()).not.toContain(KEY);
      expect(watcher.stderr()).not.toContain(SECRET);
    },
  );
});
