import { mkdirSync, mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { startWatcher } from '../helpers/watcher-process.js';

const KEY = 'df_secret_key_for_reload_tests';
const SECRET = `whsec_${Buffer.alloc(32, 3).toString('base64')}`;
const RUN = '3c90c3cc-0d44-4b50-8888-8dd25736052a';

describe('end to end: a bad config file on reload', () => {
  it('is logged as config.reload_failed naming the key, never with the password of a URL', async () => {
    const cwd = mkdtempSync(path.join(tmpdir(), 'watcher-reload-'));
    const file = path.join(cwd, 'w.json');
    writeFileSync(file, JSON.stringify({ watchRunIds: [RUN] }));
    const watcher = startWatcher(
      {
        DATAFRAMER_API_KEY: KEY,
        // Nothing listens on port 9: polls fail to connect, the run stays watched.
        DATAFRAMER_BASE_URL: 'http://127.0.0.1:9',
        CONFIG_FILE: 'w.json',
        STATE_DIR: ':memory:',
        HTTP_HOST: '127.0.0.1',
        HTTP_PORT: '0',
      },
      { cwd },
    );
    await watcher.waitFor((line) => line.event === 'watcher.started');

    writeFileSync(
      file,
      JSON.stringify({
        watchRunIds: [RUN],
        webhookSecret: SECRET,
        webhookUrls: ['ftp://user:reload-password-1@host.example/x?token=reload-token-1'],
      }),
    );
    const failed = await watcher.waitFor((line) => line.event === 'config.reload_failed');
    expect(failed['setting']).toBe('w.json: webhookUrls (item 1)');
    expect(failed['problem']).toContain('***@host.example/x?***');
    for (const secret of ['reload-password-1', 'reload-token-1', KEY, SECRET]) {
      expect(watcher.stdout()).not.toContain(secret);
      expect(watcher.stderr()).not.toContain(secret);
    }
    watcher.kill('SIGTERM');
    expect(await watcher.exited).toBe(0);
  });
});

describe('end to end: the config file goes away for a moment', () => {
  it('is a failed reload, not an empty run list, and EXIT_WHEN_DONE does not exit', async () => {
    const cwd = mkdtempSync(path.join(tmpdir(), 'watcher-reload-gone-'));
    mkdirSync(path.join(cwd, 'config'));
    const file = path.join(cwd, 'config', 'watcher.json'); // the default file, found by cwd
    const second = '4d90c3cc-0d44-4b50-8888-8dd25736052b';
    writeFileSync(file, JSON.stringify({ watchRunIds: [RUN, second] }));
    const watcher = startWatcher(
      {
        DATAFRAMER_API_KEY: KEY,
        DATAFRAMER_BASE_URL: 'http://127.0.0.1:9',
        EXIT_WHEN_DONE: 'true',
        POLL_CRON: '* * * * * *',
      },
      { cwd },
    );
    await watcher.waitFor((line) => line.event === 'watcher.started');

    renameSync(file, `${file}.moved`);
    const failed = await watcher.waitFor((line) => line.event === 'config.reload_failed');
    expect(failed['setting']).toBe('CONFIG_FILE');
    writeFileSync(file, '');
    await watcher.waitFor(
      (line) => line.event === 'config.reload_failed' && String(line['problem']).includes('empty'),
    );
    renameSync(`${file}.moved`, file);
    const reloaded = await watcher.waitFor((line) => line.event === 'config.reloaded');
    expect(reloaded).toMatchObject({ added: 0, removed: 0, runs: 2 });

    expect(watcher.byEvent('run.removed')).toEqual([]);
    expect(watcher.child.exitCode).toBeNull();
    watcher.kill('SIGTERM');
    expect(await watcher.exited).toBe(0);
  });
});
