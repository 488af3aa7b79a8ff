import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { DEFAULT_WEBHOOK_RETRY_SCHEDULE_MS } from '../../src/config/schema.js';

const RUN_A = '3c90c3cc-0d44-4b50-8888-8dd25736052a';
const RUN_B = '7d1f2a10-5b6c-4d7e-9f80-112233445566';
const SECRET = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;

function emptyDir(): string {
  return mkdtempSync(path.join(tmpdir(), 'watcher-config-'));
}

function load(env: Record<string, string>, cwd = emptyDir()) {
  return loadConfig({ DATAFRAMER_API_KEY: 'key-123', ...env }, cwd);
}

function configError(env: Record<string, string>, cwd?: string): ConfigError {
  try {
    load(env, cwd);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('applies the defaults of the design table', () => {
    const config = load({});
    expect(config).toMatchObject({
      baseUrl: 'https://df-api.dataframer.ai',
      watchRunIds: [],
      receivers: [],
      pollCron: '*/5 * * * * *',
      pollMinIntervalMs: 5_000,
      pollMaxIntervalMs: 60_000,
      maxWatchMs: 7 * 24 * 60 * 60 * 1000,
      stateDir: './data',
      httpPort: 8080,
      logLevel: 'info',
      exitWhenDone: false,
      webhookRetryScheduleMs: DEFAULT_WEBHOOK_RETRY_SCHEDULE_MS,
      configFile: null,
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('reads lists separated by commas or white space, lower-cases and dedupes run IDs', () => {
    const config = load({
      WATCH_RUN_IDS: ` ${RUN_A.toUpperCase()},${RUN_B}\n${RUN_A} `,
      WEBHOOK_URLS: 'http://127.0.0.1:9000/a, http://127.0.0.1:9000/b',
      WEBHOOK_SECRET: SECRET,
      EXIT_WHEN_DONE: 'true',
      HTTP_PORT: '0',
    });
    expect(config.watchRunIds).toEqual([RUN_A, RUN_B]);
    expect(config.receivers.map((r) => r.url)).toEqual([
      'http://127.0.0.1:9000/a',
      'http://127.0.0.1:9000/b',
    ]);
    expect(config).toMatchObject({ exitWhenDone: true, httpPort: 0 });
  });

  it('lets env win over the config file, and the file over defaults', () => {
    const dir = emptyDir();
    const file = path.join(dir, 'watcher.yaml');
    writeFileSync(
      file,
      [
        'watchRunIds:',
        `  - ${RUN_A}`,
        'pollMinIntervalMs: 2000',
        'pollMaxIntervalMs: 9000',
        'webhooks:',
        '  - url: http://127.0.0.1:9000/hook',
        '    timeoutMs: 3000',
        `webhookSecret: ${SECRET}`,
      ].join('\n'),
    );
    const config = load({ CONFIG_FILE: file, POLL_MAX_INTERVAL_MS: '20000' }, dir);
    expect(config).toMatchObject({
      watchRunIds: [RUN_A],
      pollMinIntervalMs: 2_000,
      pollMaxIntervalMs: 20_000,
      receivers: [{ url: 'http://127.0.0.1:9000/hook', timeoutMs: 3_000 }],
      configFile: file,
    });
  });

  it('loads config/watcher.json from the working directory when present', () => {
    const dir = emptyDir();
    mkdirSync(path.join(dir, 'config'));
    writeFileSync(
      path.join(dir, 'config', 'watcher.json'),
      JSON.stringify({ watchRunIds: [RUN_B] }),
    );
    expect(load({}, dir)).toMatchObject({
      watchRunIds: [RUN_B],
      configFile: path.join(dir, 'config', 'watcher.json'),
    });
  });

  it('holds 10,000 run IDs from a JSON file', () => {
    const dir = emptyDir();
    const ids = Array.from(
      { length: 10_000 },
      (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    );
    const file = path.join(dir, 'many.json');
    writeFileSync(file, JSON.stringify({ watchRunIds: ids }));
    expect(load({ CONFIG_FILE: file }, dir).watchRunIds).toHaveLength(10_000);
  });

  const badCases: [string, Record<string, string>, string, RegExp][] = [
    ['missing API key', { DATAFRAMER_API_KEY: '' }, 'DATAFRAMER_API_KEY', /empty|required/],
    [
      'bad run ID',
      { WATCH_RUN_IDS: `${RUN_A},not-a-uuid` },
      'WATCH_RUN_IDS (item 2)',
      /UUID.*not-a-uuid/,
    ],
    ['bad base URL', { DATAFRAMER_BASE_URL: 'ftp://x' }, 'DATAFRAMER_BASE_URL', /http/],
    [
      'bad webhook URL',
      { WEBHOOK_URLS: 'nope', WEBHOOK_SECRET: SECRET },
      'WEBHOOK_URLS (item 1)',
      /URL/,
    ],
    ['bad cron', { POLL_CRON: '* * banana' }, 'POLL_CRON', /cron/],
    [
      'bad secret',
      { WEBHOOK_URLS: 'http://127.0.0.1/h', WEBHOOK_SECRET: 'hunter2' },
      'WEBHOOK_SECRET',
      /whsec_/,
    ],
    [
      'receiver without secret',
      { WEBHOOK_URLS: 'http://127.0.0.1/h' },
      'WEBHOOK_SECRET',
      /required/,
    ],
    [
      'min above max',
      { POLL_MIN_INTERVAL_MS: '9000', POLL_MAX_INTERVAL_MS: '1000' },
      'POLL_MIN_INTERVAL_MS',
      /exceed/,
    ],
    [
      'non-numeric interval',
      { POLL_MAX_INTERVAL_MS: 'soon' },
      'POLL_MAX_INTERVAL_MS',
      /milliseconds/,
    ],
    ['negative max watch', { MAX_WATCH_MS: '-5' }, 'MAX_WATCH_MS', /greater than 0/],
    ['bad port', { HTTP_PORT: '70000' }, 'HTTP_PORT', /0 to 65535/],
    ['bad log level', { LOG_LEVEL: 'loud' }, 'LOG_LEVEL', /expected one of|Invalid option/],
    ['bad boolean', { EXIT_WHEN_DONE: 'maybe' }, 'EXIT_WHEN_DONE', /true or false/],
  ];

  it.each(badCases)('rejects %s, naming the setting', (_name, env, setting, problem) => {
    const error = configError(env);
    expect(error.setting).toBe(setting);
    expect(error.message).toMatch(problem);
    expect(error.message.startsWith(`${setting}: `)).toBe(true);
  });

  it('names the file and key for a bad value in the config file', () => {
    const dir = emptyDir();
    const file = path.join(dir, 'w.json');
    writeFileSync(file, JSON.stringify({ pollCron: 'every minute' }));
    expect(configError({ CONFIG_FILE: file }, dir).setting).toBe('w.json: pollCron');
  });

  it('rejects an unknown key in the config file', () => {
    const dir = emptyDir();
    const file = path.join(dir, 'w.json');
    writeFileSync(file, JSON.stringify({ pollCorn: '* * * * * *' }));
    expect(configError({ CONFIG_FILE: file }, dir).message).toMatch(/w\.json.*pollCorn/);
  });

  it('names CONFIG_FILE when the file is missing or unparsable', () => {
    const dir = emptyDir();
    expect(configError({ CONFIG_FILE: 'missing.json' }, dir).setting).toBe('CONFIG_FILE');
    writeFileSync(path.join(dir, 'broken.json'), '{ nope');
    expect(configError({ CONFIG_FILE: 'broken.json' }, dir).message).toMatch(
      /broken\.json is not valid/,
    );
  });

  it('never echoes the API key or the secret in an error', () => {
    const error = configError({
      DATAFRAMER_API_KEY: 'sk-very-secret',
      WEBHOOK_URLS: 'http://127.0.0.1/h',
      WEBHOOK_SECRET: 'whsec_short',
    });
    expect(error.message).not.toContain('sk-very-secret');
    expect(error.message).not.toContain('whsec_short');
  });
});

describe('loadConfig: the run list', () => {
  it('merges run IDs from env and file instead of letting env replace them', () => {
    const dir = emptyDir();
    const file = path.join(dir, 'w.json');
    writeFileSync(file, JSON.stringify({ watchRunIds: [RUN_B, RUN_A] }));
    expect(load({ CONFIG_FILE: file, WATCH_RUN_IDS: RUN_A }, dir).watchRunIds).toEqual([
      RUN_A,
      RUN_B,
    ]);
  });
});

describe('loadConfig: precedence and secrecy of the file', () => {
  it('lets WEBHOOK_URLS decide the receivers, keeping file options for the URLs it names', () => {
    const dir = emptyDir();
    const file = path.join(dir, 'w.json');
    writeFileSync(
      file,
      JSON.stringify({
        webhookSecret: SECRET,
        webhooks: [
          { url: 'http://127.0.0.1:9/a', timeoutMs: 1_000 },
          { url: 'http://127.0.0.1:9/b' },
        ],
      }),
    );
    const config = load(
      { CONFIG_FILE: file, WEBHOOK_URLS: 'http://127.0.0.1:9/a,http://127.0.0.1:9/c' },
      dir,
    );
    expect(config.receivers).toEqual([
      { url: 'http://127.0.0.1:9/a', timeoutMs: 1_000 },
      { url: 'http://127.0.0.1:9/c' },
    ]);
    expect(load({ CONFIG_FILE: file }, dir).receivers).toHaveLength(2);
  });

  it.each([
    [
      'w.yaml',
      'apiKey: "df_live_SUPERSECRET\nlogLevel: info\n',
      /w\.yaml is not valid YAML \(line \d+, column \d+\)$/,
    ],
    ['w.json', '{"apiKey": "df_live_SUPERSECRET", }', /w\.json is not valid JSON/],
  ])('reports where %s is broken without quoting it', (name, text, problem) => {
    const dir = emptyDir();
    writeFileSync(path.join(dir, name), text);
    const error = configError({ CONFIG_FILE: name }, dir);
    expect(error.message).toMatch(problem);
    expect(error.message).not.toContain('SUPERSECRET');
  });
});
