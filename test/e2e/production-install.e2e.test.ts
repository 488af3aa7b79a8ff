import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from '@jest/globals';
import { deliveredRunIds, useWorld } from '../helpers/world.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const work = mkdtempSync(path.join(tmpdir(), 'watcher-prod-'));
const world = useWorld();
afterAll(() => rmSync(work, { recursive: true, force: true }));

function npm(args: string[], cwd: string): void {
  // The machine's npm, with this test's Node first on PATH, as a user of the repo would run it.
  execFileSync('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd,
    stdio: 'pipe',
    env: { ...process.env, PATH: `${path.dirname(process.execPath)}:${process.env['PATH'] ?? ''}` },
  });
}

/** What the Dockerfile does, without Docker: a clean copy, a build, then a production-only install. */
function buildLikeTheImage(): string {
  const source = path.join(work, 'source');
  const files = execFileSync(
    'git',
    ['ls-files', '-z', '--cached', '--others', '--exclude-standard'],
    { cwd: REPO, encoding: 'utf8' },
  )
    .split('\0')
    // No symlink: a work tree's node_modules linked to another checkout would be copied as a
    // link, and `npm ci` in the copy would empty that other checkout's node_modules.
    .filter(
      (file) =>
        file !== '' &&
        existsSync(path.join(REPO, file)) &&
        !lstatSync(path.join(REPO, file)).isSymbolicLink(),
    );
  for (const file of files)
    cpSync(path.join(REPO, file), path.join(source, file), { recursive: true });
  npm(['ci', '--ignore-scripts'], source);
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], {
    cwd: source,
  });

  const app = path.join(work, 'app');
  mkdirSync(app);
  for (const file of ['package.json', 'package-lock.json'])
    cpSync(path.join(source, file), path.join(app, file));
  npm(['ci', '--omit=dev', '--ignore-scripts'], app);
  cpSync(path.join(source, 'dist'), path.join(app, 'dist'), { recursive: true });
  cpSync(path.join(source, 'config'), path.join(app, 'config'), { recursive: true });
  return app;
}

describe('production install, as in the Docker image', () => {
  it('installs without dev dependencies, starts from env alone, gets ready, delivers, and stops on SIGTERM', async () => {
    const app = buildLikeTheImage();
    expect(() =>
      execFileSync(process.execPath, ['-e', "import('typescript')"], { cwd: app, stdio: 'pipe' }),
    ).toThrow();

    // The env an operator would write: the program's defaults but for these, no test settings.
    const { ids, receiver, watcher } = await world.scenario({
      runs: { seed: 77, count: 3, minDurationMs: 1_000, maxDurationMs: 3_000 },
      fast: false,
      env: {
        NODE_ENV: 'production',
        POLL_CRON: '* * * * * *',
        POLL_MIN_INTERVAL_MS: '500',
        POLL_MAX_INTERVAL_MS: '2000',
        STATE_DIR: path.join(work, 'data'),
        SHUTDOWN_GRACE_MS: '5000',
        WEBHOOK_TIMEOUT_MS: '2000',
      },
      watcher: { cwd: app, main: path.join(app, 'dist', 'main.js') },
    });
    const started = await watcher.waitFor((l) => l.event === 'watcher.started');
    const readyz = `http://127.0.0.1:${String(started['http_port'])}/readyz`;
    expect((await fetch(readyz)).status).toBe(200);

    await watcher.waitFor(() => receiver.deliveries.length === ids.length, 30_000);
    expect(deliveredRunIds(receiver).sort()).toEqual([...ids].sort());

    const stopAt = Date.now();
    watcher.kill('SIGTERM');
    expect(await watcher.exited).toBe(0);
    expect(Date.now() - stopAt).toBeLessThan(5_000);
    expect(watcher.byEvent('watcher.stopped')).toHaveLength(1);
  }, 240_000);
});
