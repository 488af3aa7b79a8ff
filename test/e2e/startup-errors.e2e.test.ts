import { describe, expect, it } from '@jest/globals';
import { API_KEY, tempDir, useWorld } from '../helpers/world.js';

const world = useWorld();

describe('a start the operator must fix', () => {
  it('HTTP port in use: one line naming HTTP_PORT, exit 78, and the state directory is left free', async () => {
    const port = await world.portInUse();
    const stateDir = tempDir('watcher-port-');
    const env = { DATAFRAMER_API_KEY: API_KEY, STATE_DIR: stateDir };

    const refused = world.watcher({ ...env, HTTP_PORT: port });
    expect(await refused.exited).toBe(78);
    expect(refused.stderr()).toMatch(
      new RegExp(
        `^dataframer-run-watcher: invalid configuration: HTTP_PORT: cannot listen on 127\\.0\\.0\\.1:${port} \\(EADDRINUSE\\)[^\\n]*\\n$`,
      ),
    );
    expect(refused.stdout()).toBe('');

    // The lock went with it: the next start on the same directory runs.
    const next = world.watcher(env);
    await next.waitFor((line) => line.event === 'watcher.started');
    next.kill('SIGTERM');
    expect(await next.exited).toBe(0);
  });
});
