import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from '@jest/globals';
import { closeServer, listenOn } from '../../src/demo/http-server.js';
import { startWatcher } from '../helpers/watcher-process.js';
import { API_KEY } from '../helpers/world.js';

const taken = createServer();
afterEach(() => closeServer(taken));

describe('a start the operator must fix', () => {
  it('HTTP port in use: one line naming HTTP_PORT, exit 78, and the state directory is left free', async () => {
    const port = new URL(await listenOn(taken, 0, '127.0.0.1')).port;
    const stateDir = mkdtempSync(path.join(tmpdir(), 'watcher-port-'));
    const env = { DATAFRAMER_API_KEY: API_KEY, STATE_DIR: stateDir };

    const refused = startWatcher({ ...env, HTTP_PORT: port });
    expect(await refused.exited).toBe(78);
    expect(refused.stderr()).toMatch(
      new RegExp(
        `^dataframer-run-watcher: invalid configuration: HTTP_PORT: cannot listen on 127\\.0\\.0\\.1:${port} \\(EADDRINUSE\\)[^\\n]*\\n$`,
      ),
    );
    expect(refused.stdout()).toBe('');

    // The lock went with it: the next start on the same directory runs.
    const next = startWatcher(env);
    await next.waitFor((line) => line.event === 'watcher.started');
    next.kill('SIGTERM');
    expect(await next.exited).toBe(0);
  });
});
