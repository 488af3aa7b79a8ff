import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
      requestTimeoutMs: 10_000,
      webhookTimeoutMs: 10_000,
      shutdownGraceMs: 15_000,
      retentionDays: 30,
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

function fileError(name: string, text: string | Buffer, env: Record<string, string> = {}) {
  const dir = emptyDir();
  writeFileSync(path.join(dir, name), text);
  return configError({ CONFIG_FILE: name, ...env }, dir);
}

describe('loadConfig: upper bounds of durations', () => {
  const DAY = 24 * 60 * 60 * 1000;
  it.each([
    ['POLL_MIN_INTERVAL_MS', String(DAY + 1), 'POLL_MIN_INTERVAL_MS', 'at most 86400000'],
    ['POLL_MAX_INTERVAL_MS', String(DAY + 1), 'POLL_MAX_INTERVAL_MS', 'at most 86400000'],
    ['REQUEST_TIMEOUT_MS', '600001', 'REQUEST_TIMEOUT_MS', 'at most 600000'],
    ['WEBHOOK_TIMEOUT_MS', '600001', 'WEBHOOK_TIMEOUT_MS', 'at most 600000'],
    ['SHUTDOWN_GRACE_MS', '3000000000', 'SHUTDOWN_GRACE_MS', 'at most 600000'],
    ['MAX_WATCH_MS', String(24 * DAY + 1), 'MAX_WATCH_MS', 'at most 2073600000'],
    ['NOT_FOUND_AFTER_MS', String(7 * DAY + 1), 'NOT_FOUND_AFTER_MS', 'at most 604800000'],
    [
      'WEBHOOK_RETRY_SCHEDULE_MS',
      `1000,${30 * DAY}`,
      'WEBHOOK_RETRY_SCHEDULE_MS (item 2)',
      'at most 86400000',
    ],
    [
      'WEBHOOK_RETRY_SCHEDULE_MS',
      Array(21).fill('1000').join(','),
      'WEBHOOK_RETRY_SCHEDULE_MS',
      'at most 20',
    ],
  ])('rejects %s=%s above its maximum', (name, value, setting, problem) => {
    const error = configError({ [name]: value });
    expect(error.setting).toBe(setting);
    expect(error.problem).toContain(problem);
  });

  it('accepts every duration at its maximum', () => {
    const atMaximum = {
      POLL_MIN_INTERVAL_MS: String(DAY),
      POLL_MAX_INTERVAL_MS: String(DAY),
      REQUEST_TIMEOUT_MS: '599999',
      WEBHOOK_TIMEOUT_MS: '599999',
      SHUTDOWN_GRACE_MS: '600000',
      MAX_WATCH_MS: String(24 * DAY),
      NOT_FOUND_AFTER_MS: String(7 * DAY),
      WEBHOOK_RETRY_SCHEDULE_MS: Array(20).fill(String(DAY)).join(','),
    };
    const config = load(atMaximum);
    expect(config.maxWatchMs).toBeLessThanOrEqual(2 ** 31 - 1);
    expect(config.webhookRetryScheduleMs).toHaveLength(20);
    expect(() => load({ ...atMaximum, SHUTDOWN_GRACE_MS: '600001' })).toThrow(ConfigError);
  });

  it("bounds a receiver's own timeout and retry schedule in the file", () => {
    const hooks = (receiver: object) =>
      JSON.stringify({
        webhookSecret: SECRET,
        webhooks: [{ url: 'http://127.0.0.1:9/a', ...receiver }],
      });
    expect(fileError('w.json', hooks({ timeoutMs: 600_001 }))).toMatchObject({
      setting: 'w.json: webhooks (item 1.timeoutMs)',
      problem: expect.stringContaining('at most 600000'),
    });
    expect(fileError('w.json', hooks({ retryScheduleMs: [1000, 30 * DAY] }))).toMatchObject({
      setting: 'w.json: webhooks (item 1.retryScheduleMs.2)',
      problem: expect.stringContaining('at most 86400000'),
    });
  });

  it('wants NOT_FOUND_AFTER_MS below MAX_WATCH_MS, naming both', () => {
    const error = configError({ MAX_WATCH_MS: '300000' });
    expect(error.setting).toBe('NOT_FOUND_AFTER_MS');
    expect(error.problem).toMatch(/less than MAX_WATCH_MS \(300000\)/);
  });
});

describe('loadConfig: what is in flight must fit in the shutdown grace', () => {
  it('has defaults that fit: the webhook timeout is shorter than the grace', () => {
    const config = load({});
    expect(config.webhookTimeoutMs).toBeLessThan(config.shutdownGraceMs);
  });

  it('lets a poll outlast the grace: one cut short is made again after the restart', () => {
    expect(load({ REQUEST_TIMEOUT_MS: '60000' }).requestTimeoutMs).toBe(60_000);
  });

  it.each([
    [{ WEBHOOK_TIMEOUT_MS: '20000' }, 'WEBHOOK_TIMEOUT_MS (20000)'],
    [{ SHUTDOWN_GRACE_MS: '10000', WEBHOOK_TIMEOUT_MS: '10000' }, 'WEBHOOK_TIMEOUT_MS (10000)'],
    [{ SHUTDOWN_GRACE_MS: '5000', REQUEST_TIMEOUT_MS: '1000' }, 'WEBHOOK_TIMEOUT_MS (10000)'],
  ])('rejects %j, naming the setting it conflicts with', (env, other) => {
    const error = configError(env);
    expect(error.setting).toBe('SHUTDOWN_GRACE_MS');
    expect(error.problem).toContain(`greater than ${other}`);
  });

  it("names a receiver's own timeout, and file keys as written in the file", () => {
    const dir = emptyDir();
    writeFileSync(
      path.join(dir, 'w.json'),
      JSON.stringify({
        webhookSecret: SECRET,
        shutdownGraceMs: 12_000,
        webhooks: [
          { url: 'http://127.0.0.1:9/a' },
          { url: 'http://127.0.0.1:9/b', timeoutMs: 12_000 },
        ],
      }),
    );
    expect(configError({ CONFIG_FILE: 'w.json' }, dir)).toMatchObject({
      setting: 'w.json: shutdownGraceMs',
      problem: expect.stringContaining('greater than w.json: webhooks (item 2) timeoutMs (12000)'),
    });
  });
});

describe('loadConfig: POLL_CRON must fire', () => {
  it.each(['0 0 0 31 2 *', '0 0 0 30 2 *', '0 0 12 31 4 *'])(
    'rejects %s, which never fires',
    (cron) => {
      const error = configError({ POLL_CRON: cron });
      expect(error.setting).toBe('POLL_CRON');
      expect(error.problem).toMatch(/never fires/);
    },
  );
});

describe('loadConfig: secrets stay out of messages', () => {
  it.each([
    ['WEBHOOK_URLS', 'ftp://user:url-password-1@host.example/x', 'WEBHOOK_URLS (item 1)'],
    ['WEBHOOK_URLS', 'user:url-password-1@host.example', 'WEBHOOK_URLS (item 1)'],
    ['DATAFRAMER_BASE_URL', 'gopher://h.example/p?token=url-password-1', 'DATAFRAMER_BASE_URL'],
    [
      'DATAFRAMER_BASE_URL',
      'ftp://url-password-1@h.example/#url-password-1',
      'DATAFRAMER_BASE_URL',
    ],
  ])('redacts %s=%s in the message and the problem', (name, value, setting) => {
    const error = configError({ [name]: value, WEBHOOK_SECRET: SECRET });
    expect(error.setting).toBe(setting);
    expect(error.message).toContain('***');
    expect(error.message).not.toContain('url-password-1');
    expect(error.problem).not.toContain('url-password-1');
  });

  it('refuses a YAML custom tag without letting the yaml library print the line', () => {
    const warnings: unknown[] = [];
    const onWarning = (warning: unknown) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const error = fileError('w.yaml', 'logLevel: info\napiKey: !secret df_tagged_SUPERSECRET\n');
      expect(error.setting).toBe('CONFIG_FILE');
      expect(error.message).toMatch(/w\.yaml uses an unsupported YAML tag.*\(line 2, column 9\)/);
      expect(error.message).not.toContain('SUPERSECRET');
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings).toEqual([]);
  });

  it('never shows the API key or the webhook secret, even in a message that would quote them', () => {
    // A run ID that happens to be the API key (a paste into the wrong line) is quoted back...
    const error = configError({
      DATAFRAMER_API_KEY: 'df_pasted_twice',
      WATCH_RUN_IDS: 'df_pasted_twice',
    });
    expect(error.setting).toBe('WATCH_RUN_IDS (item 1)');
    // ...but never in clear.
    expect(error.message).not.toContain('df_pasted_twice');
  });

  it('keeps the message one line, without control characters, for any key in the file', () => {
    const error = fileError('w.json', JSON.stringify({ 'evil\nkey\u001b[31m': 1 }));
    expect(error.message).toMatch(/unknown setting/);
    expect(error.message).not.toMatch(/[\p{Cc}]/u);
  });

  it('takes a "__proto__" key in a JSON file for an unknown key, not for the prototype', () => {
    const error = fileError('w.json', '{"__proto__": {"logLevel": "debug"}}');
    expect(error.message).toMatch(/unknown setting "__proto__"/);
  });
});

describe('loadConfig: duplicate keys in a JSON file', () => {
  it.each([
    [
      '{"apiKey": "df_first_SECRET", "logLevel": "info", "apiKey": "df_second_SECRET"}',
      'apiKey',
      1,
      51,
    ],
    [
      '{\n  "webhookSecret": "x",\n  "webhooks": [\n    {"url": "http://127.0.0.1:9/a", "url": "df_second_SECRET"}\n  ]\n}',
      'url',
      4,
      37,
    ],
    ['{"logLevel": "info", "log\\u004cevel": "df_second_SECRET"}', 'logLevel', 1, 22],
  ])('rejects %s, naming the key and where, not the value', (text, key, line, column) => {
    const error = fileError('w.json', text);
    expect(error.setting).toBe('CONFIG_FILE');
    expect(error.problem).toMatch(
      `w.json has the key "${key}" twice (line ${line}, column ${column})`,
    );
    expect(error.message).not.toMatch(/SECRET/);
  });

  it('accepts equal keys in different objects and keys equal to values, not a repeat', () => {
    const dir = emptyDir();
    const settings = {
      webhookSecret: SECRET,
      logLevel: 'info',
      stateDir: 'logLevel',
      webhooks: [{ url: 'http://127.0.0.1:9/a' }, { url: 'http://127.0.0.1:9/b' }],
    };
    writeFileSync(path.join(dir, 'w.json'), JSON.stringify(settings));
    expect(load({ CONFIG_FILE: 'w.json' }, dir).receivers).toHaveLength(2);
    writeFileSync(
      path.join(dir, 'w.json'),
      JSON.stringify(settings).replace('{', '{"stateDir":"x",'),
    );
    expect(() => load({ CONFIG_FILE: 'w.json' }, dir)).toThrow(/has the key "stateDir" twice/);
  });
});

describe('loadConfig: reloading the file that was loaded at start', () => {
  function startedWithDefaultFile() {
    const dir = emptyDir();
    mkdirSync(path.join(dir, 'config'));
    const file = path.join(dir, 'config', 'watcher.json');
    writeFileSync(file, JSON.stringify({ watchRunIds: [RUN_A] }));
    const env = { DATAFRAMER_API_KEY: 'key-123' };
    const config = loadConfig(env, dir);
    expect(config.configFile).toBe(file);
    return {
      dir,
      file,
      env,
      reload: () => loadConfig(env, dir, { requireFile: config.configFile }),
    };
  }

  it('fails, rather than emptying the run list, when the file is gone', () => {
    const { file, reload } = startedWithDefaultFile();
    writeFileSync(file, JSON.stringify({ watchRunIds: [RUN_B] }));
    expect(reload().watchRunIds).toEqual([RUN_B]);
    rmSync(file);
    expect(() => reload()).toThrow(ConfigError);
    expect(() => reload()).toThrow(/^CONFIG_FILE: cannot read .*watcher\.json/);
  });

  it.each([
    ['empty', '', /watcher\.json is empty/],
    ['blank', ' \n', /watcher\.json is empty/],
  ])('fails when the file is %s', (_name, text, problem) => {
    const { file, reload } = startedWithDefaultFile();
    writeFileSync(file, text);
    expect(() => reload()).toThrow(problem);
  });
});

describe('loadConfig: RETENTION_DAYS', () => {
  it('defaults to 30 days and reads env and file', () => {
    expect(load({}).retentionDays).toBe(30);
    expect(load({ RETENTION_DAYS: '3650' }).retentionDays).toBe(3650);
    const dir = emptyDir();
    writeFileSync(path.join(dir, 'w.yaml'), 'retentionDays: 7\n');
    expect(load({ CONFIG_FILE: 'w.yaml' }, dir).retentionDays).toBe(7);
    expect(load({ RETENTION_DAYS: '0.5' }).retentionDays).toBe(0.5); // 12 hours
  });

  it.each(['0', '0.0001', '3651', 'forever'])('rejects RETENTION_DAYS=%s', (value) => {
    expect(configError({ RETENTION_DAYS: value }).setting).toBe('RETENTION_DAYS');
  });
});

describe('loadConfig: EXIT_WHEN_DONE needs runs', () => {
  it('rejects EXIT_WHEN_DONE=true with no run at all', () => {
    const error = configError({ EXIT_WHEN_DONE: 'true' });
    expect(error.setting).toBe('EXIT_WHEN_DONE');
    expect(error.problem).toMatch(/no run to watch \(WATCH_RUN_IDS is empty\)/);
    const dir = emptyDir();
    writeFileSync(path.join(dir, 'w.json'), JSON.stringify({ watchRunIds: [RUN_A] }));
    expect(load({ CONFIG_FILE: 'w.json', EXIT_WHEN_DONE: 'true' }, dir).exitWhenDone).toBe(true);
  });
});

describe('loadConfig: where each run is listed', () => {
  const RUN_C = 'a0b1c2d3-e4f5-4a6b-8c7d-8e9f00112233';

  it('gives the env runs as env and the file-only runs as file, a run in both as env', () => {
    const dir = emptyDir();
    writeFileSync(path.join(dir, 'w.json'), JSON.stringify({ watchRunIds: [RUN_B, RUN_C] }));
    const config = load({ CONFIG_FILE: 'w.json', WATCH_RUN_IDS: `${RUN_A},${RUN_B}` }, dir);
    expect(config.runSources).toEqual(
      new Map([
        [RUN_A, 'env'],
        [RUN_B, 'env'],
        [RUN_C, 'file'],
      ]),
    );
    expect([...config.runSources.keys()]).toEqual(config.watchRunIds);
  });

  it('matches a run in both whatever its case, and a run the env lists twice', () => {
    const dir = emptyDir();
    writeFileSync(path.join(dir, 'w.yaml'), `watchRunIds:\n  - ${RUN_A}\n  - ${RUN_B}\n`);
    const config = load(
      { CONFIG_FILE: 'w.yaml', WATCH_RUN_IDS: `${RUN_A.toUpperCase()} ${RUN_A}` },
      dir,
    );
    expect(config.runSources).toEqual(
      new Map([
        [RUN_A, 'env'],
        [RUN_B, 'file'],
      ]),
    );
  });

  it('has only env runs without a file, only file runs without WATCH_RUN_IDS', () => {
    expect(load({ WATCH_RUN_IDS: RUN_A }).runSources).toEqual(new Map([[RUN_A, 'env']]));
    const dir = emptyDir();
    writeFileSync(path.join(dir, 'w.json'), JSON.stringify({ watchRunIds: [RUN_A, RUN_B] }));
    expect(load({ CONFIG_FILE: 'w.json' }, dir).runSources).toEqual(
      new Map([
        [RUN_A, 'file'],
        [RUN_B, 'file'],
      ]),
    );
    // A blank WATCH_RUN_IDS is no list: the file's runs stay the file's.
    expect(load({ CONFIG_FILE: 'w.json', WATCH_RUN_IDS: ' ' }, dir).runSources).toEqual(
      new Map([
        [RUN_A, 'file'],
        [RUN_B, 'file'],
      ]),
    );
    expect(load({}).runSources.size).toBe(0);
  });

  it('gives the sources of the file as it is now on a reload', () => {
    const dir = emptyDir();
    const file = path.join(dir, 'w.json');
    writeFileSync(file, JSON.stringify({ watchRunIds: [RUN_B] }));
    const env = { DATAFRAMER_API_KEY: 'key-123', CONFIG_FILE: 'w.json', WATCH_RUN_IDS: RUN_A };
    const config = loadConfig(env, dir);
    writeFileSync(file, JSON.stringify({ watchRunIds: [RUN_C] }));
    expect(loadConfig(env, dir, { requireFile: config.configFile }).runSources).toEqual(
      new Map([
        [RUN_A, 'env'],
        [RUN_C, 'file'],
      ]),
    );
  });
});

describe('loadConfig: the run API and account discovery', () => {
  const TOKEN = 'a'.repeat(32);

  it('defaults to no API and no discovery', () => {
    const config = load({});
    expect(config).toMatchObject({
      discoverRuns: false,
      discoveryIntervalMs: 30_000,
      discoverSpecIds: [],
      discoverCreatedBy: [],
    });
    expect(config.adminToken).toBeUndefined();
    expect(config.discoverSince).toBeUndefined();
  });

  it('reads the discovery settings from env', () => {
    const config = load({
      DISCOVER_RUNS: 'true',
      DISCOVERY_INTERVAL_MS: '60000',
      DISCOVER_SINCE: '2026-12-01T00:00:00Z',
      DISCOVER_SPEC_IDS: `${RUN_A.toUpperCase()}, ${RUN_B}`,
      DISCOVER_CREATED_BY: 'ana@example.com bob@example.org',
      ADMIN_TOKEN: ` ${TOKEN} `,
    });
    expect(config).toMatchObject({
      discoverRuns: true,
      discoveryIntervalMs: 60_000,
      discoverSince: '2026-12-01T00:00:00Z',
      discoverSpecIds: [RUN_A, RUN_B],
      discoverCreatedBy: ['ana@example.com', 'bob@example.org'],
      adminToken: TOKEN,
    });
    expect(load({ DISCOVER_RUNS: 'false' }).discoverRuns).toBe(false);
  });

  it('reads them from the config file', () => {
    const dir = emptyDir();
    writeFileSync(
      path.join(dir, 'w.json'),
      JSON.stringify({
        discoverRuns: true,
        discoverSince: '2026-12-01T00:00:00+01:00',
        adminToken: TOKEN,
      }),
    );
    expect(load({ CONFIG_FILE: 'w.json' }, dir)).toMatchObject({
      discoverRuns: true,
      discoverSince: '2026-12-01T00:00:00+01:00',
      adminToken: TOKEN,
    });
  });

  it.each<[string, Record<string, string>, string, RegExp]>([
    ['a short ADMIN_TOKEN', { ADMIN_TOKEN: 'a'.repeat(31) }, 'ADMIN_TOKEN', /at least 32/],
    ['DISCOVER_SINCE not ISO 8601', { DISCOVER_SINCE: 'yesterday' }, 'DISCOVER_SINCE', /ISO/],
    ['DISCOVER_SINCE as a date only', { DISCOVER_SINCE: '2026-12-01' }, 'DISCOVER_SINCE', /ISO/],
    [
      'DISCOVER_SPEC_IDS with a non-UUID',
      { DISCOVER_SPEC_IDS: `${RUN_A},spec-1` },
      'DISCOVER_SPEC_IDS (item 2)',
      /UUID.*spec-1/,
    ],
    [
      'DISCOVER_CREATED_BY with a non-email',
      { DISCOVER_CREATED_BY: 'ana@example.com,bob' },
      'DISCOVER_CREATED_BY (item 2)',
      /email/,
    ],
    [
      'DISCOVER_RUNS not a boolean',
      { DISCOVER_RUNS: 'sometimes' },
      'DISCOVER_RUNS',
      /true or false/,
    ],
    [
      'DISCOVERY_INTERVAL_MS of zero',
      { DISCOVERY_INTERVAL_MS: '0' },
      'DISCOVERY_INTERVAL_MS',
      /greater than 0/,
    ],
  ])('rejects %s, naming the setting', (_name, env, setting, problem) => {
    const error = configError(env);
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.setting).toBe(setting);
    expect(error.problem).toMatch(problem);
  });

  it('never shows a rejected ADMIN_TOKEN', () => {
    const error = configError({ ADMIN_TOKEN: 'tok_SUPERSECRET' });
    expect(error.setting).toBe('ADMIN_TOKEN');
    expect(error.message).not.toContain('SUPERSECRET');
  });

  it('names the file key for a bad discovery setting in the file', () => {
    expect(fileError('w.json', JSON.stringify({ discoverSince: 'soon' })).setting).toBe(
      'w.json: discoverSince',
    );
    expect(fileError('w.json', JSON.stringify({ adminToken: 'short' })).setting).toBe(
      'w.json: adminToken',
    );
  });
});
