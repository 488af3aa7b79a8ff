import { writeFileSync } from 'node:fs';
import { parseInteger, parseJson, parseStringOptions, UsageError } from './cli-args.js';
import { Faults } from './faults.js';
import { generateScenario, loadScenarioFile, type Scenario } from './scenario.js';
import { Simulator } from './simulator.js';

export interface SimulatorCliOptions {
  port: number;
  host: string;
  apiKey: string;
  scenario: Scenario;
  faults: Faults;
  /** Seeds the generated scenario (with --count) and the fault draws. */
  seed: number;
  /** Finished runs the account made before the start (the list endpoint shows them). */
  history: number;
  requestLog: string | null;
}

export const SIMULATOR_USAGE =
  'usage: simulator-cli [--port 0] [--host 127.0.0.1] [--api-key K] ' +
  '(--scenario file.json | --seed N --count N [--min-ms N --max-ms N --spread-ms N]) ' +
  `[--history N] [--faults '{"serverErrorRate":0.2}'] [--request-log FILE]`;

/** Throws UsageError naming the bad option. The key falls back to DATAFRAMER_API_KEY, then `demo-key`. */
export function parseSimulatorArgs(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): SimulatorCliOptions {
  const values = parseStringOptions(
    argv,
    [
      'port',
      'host',
      'api-key',
      'scenario',
      'seed',
      'count',
      'min-ms',
      'max-ms',
      'spread-ms',
      'faults',
      'history',
      'request-log',
    ],
    SIMULATOR_USAGE,
  );

  const seed = parseInteger('seed', values.seed, 1, 0, 0xffffffff);
  let scenario: Scenario;
  if (values.scenario !== undefined) {
    if (values.count !== undefined)
      throw new UsageError(`--scenario and --count exclude each other\n${SIMULATOR_USAGE}`);
    try {
      scenario = loadScenarioFile(values.scenario);
    } catch (error) {
      throw new UsageError(error instanceof Error ? error.message : String(error));
    }
  } else if (values.count !== undefined) {
    const minDurationMs = parseInteger('min-ms', values['min-ms'], 5_000);
    const maxDurationMs = parseInteger('max-ms', values['max-ms'], Math.max(30_000, minDurationMs));
    if (maxDurationMs < minDurationMs) throw new UsageError('--max-ms must not be below --min-ms');
    scenario = generateScenario({
      seed,
      count: parseInteger('count', values.count, 0, 0, 1_000_000),
      minDurationMs,
      maxDurationMs,
      startSpreadMs: parseInteger('spread-ms', values['spread-ms'], 5_000),
    });
  } else {
    throw new UsageError(`give --scenario FILE or --count N\n${SIMULATOR_USAGE}`);
  }

  const faults = Faults.safeParse(
    values.faults === undefined ? {} : parseJson('faults', values.faults),
  );
  if (!faults.success) {
    const issue = faults.error.issues[0];
    throw new UsageError(
      `--faults: ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`,
    );
  }

  return {
    port: parseInteger('port', values.port, 0, 0, 65_535),
    host: values.host ?? '127.0.0.1',
    apiKey: values['api-key'] ?? env['DATAFRAMER_API_KEY'] ?? 'demo-key',
    scenario,
    faults: faults.data,
    seed,
    history: parseInteger('history', values.history, 0, 0, 1_000_000),
    requestLog: values['request-log'] ?? null,
  };
}

export interface RunningSimulator {
  simulator: Simulator;
  url: string;
  /** Closes the server and writes the request log, if one was asked for. */
  stop: () => Promise<void>;
}

/** Starts the simulator and announces it with one JSON line, which a demo script parses for the URL. */
export async function startSimulator(
  options: SimulatorCliOptions,
  write: (line: string) => void,
): Promise<RunningSimulator> {
  const simulator = new Simulator({
    scenario: options.scenario,
    apiKey: options.apiKey,
    faults: options.faults,
    seed: options.seed,
    history: options.history,
  });
  const url = await simulator.listen(options.port, options.host);
  const runs = options.scenario.runs.map((run) => run.runId);
  write(JSON.stringify({ event: 'simulator.listening', url, runs }));
  return {
    simulator,
    url,
    stop: async () => {
      await simulator.close();
      if (options.requestLog === null) return;
      // The finish times let a checker measure how long the watcher took to notice each end.
      const log = {
        startedAt: simulator.startedAt,
        runs: options.scenario.runs.map((run) => ({
          runId: run.runId,
          outcome: run.outcome,
          finishedAt: simulator.finishedAt(run.runId),
        })),
        requests: simulator.requests,
      };
      writeFileSync(options.requestLog, `${JSON.stringify(log, null, 2)}\n`);
    },
  };
}
