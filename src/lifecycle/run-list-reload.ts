import type { Logger } from 'pino';
import { ConfigError, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { watchConfigFile } from '../config/watch-file.js';
import { logEvent } from '../logging.js';
import type { Watcher } from '../watch/watcher.js';

export interface RunListReloadOptions {
  config: Config;
  /** The env and working directory the config was loaded from. */
  env: NodeJS.ProcessEnv;
  cwd: string;
  watcher: Pick<Watcher, 'reconcile' | 'activeCount'>;
  logger: Logger;
}

export interface RunListReload {
  /** Re-reads the config and applies its run list; a bad config is logged and changes nothing. */
  reload: (reason: string) => void;
  /** Stops following the config file. */
  stop: () => void;
}

/** Applies the config's run list again on SIGHUP and whenever the config file changes. */
export function followRunList(options: RunListReloadOptions): RunListReload {
  const { config, watcher, logger } = options;
  const reload = (reason: string) => {
    try {
      // The file read at start must still be there: a moment without it (a deploy moving it,
      // a config map being swapped) is a failed reload, never an empty run list.
      const next = loadConfig(options.env, options.cwd, { requireFile: config.configFile });
      const { added, removed } = watcher.reconcile(next.runSources);
      logEvent(logger, {
        level: 'info',
        event: 'config.reloaded',
        runId: null,
        msg: 'run list reloaded',
        fields: { reason, added, removed, runs: watcher.activeCount },
      });
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      logEvent(logger, {
        level: 'error',
        event: 'config.reload_failed',
        runId: null,
        msg: 'config reload rejected; the run list is unchanged',
        fields: {
          reason,
          setting: error.setting,
          problem: error.problem.replace(/\s*\n\s*/g, ' '),
        },
      });
    }
  };
  const stop = config.configFile
    ? watchConfigFile(config.configFile, () => reload('file changed'))
    : () => {};
  return { reload, stop };
}
