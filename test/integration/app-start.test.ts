import { describe, expect, it } from '@jest/globals';
import { startApp } from '../../src/app.js';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { createLogSink } from '../helpers/log-sink.js';
import { tempDir, useWorld } from '../helpers/world.js';

const world = useWorld();

describe('startApp', () => {
  it('with its HTTP port taken: a ConfigError naming HTTP_PORT, and the store closed again', async () => {
    const port = await world.portInUse();
    const stateDir = tempDir('app-start-');
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
