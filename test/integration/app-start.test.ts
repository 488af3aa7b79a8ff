import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from '@jest/globals';
import { startApp } from '../../src/app.js';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { closeServer, listenOn } from '../../src/demo/http-server.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { createLogSink } from '../helpers/log-sink.js';

const taken = createServer();
afterEach(() => closeServer(taken));

describe('startApp', () => {
  it('with its HTTP port taken: a ConfigError naming HTTP_PORT, and the store closed again', async () => {
    const port = new URL(await listenOn(taken, 0, '127.0.0.1')).port;
    const stateDir = mkdtempSync(path.join(tmpdir(), 'app-start-'));
    const config = loadConfig(
      {
        DATAFRAMER_API_KEY: 'df_test_key',
        HTTP_HOST: '127.0.0.1',
        HTTP_PORT: port,
        STATE_DIR: stateDir,
      },
      stateDir,
    );
    const error = await startApp(config, { logDestination: createLogSink().stream }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toMatchObject({ setting: 'HTTP_PORT' });
    // Same process: only a closed store lets this open succeed (the lock is per connection).
    SqliteStore.open(stateDir).close();
  });
});
