import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { Webhook } from 'standardwebhooks';
import { Run } from '../../src/dataframer/schema.js';
import { UsageError } from '../../src/demo/cli-args.js';
import {
  parseReceiverArgs,
  startReceiver,
  type RunningReceiver,
} from '../../src/demo/receiver-command.js';
import { generateScenario } from '../../src/demo/scenario.js';
import {
  parseSimulatorArgs,
  startSimulator,
  type RunningSimulator,
} from '../../src/demo/simulator-command.js';

const SECRET = `whsec_${Buffer.alloc(32, 3).toString('base64')}`;

let dir: string;
let running: { stop: () => Promise<void> }[];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'demo-cli-'));
  running = [];
});

afterEach(async () => {
  await Promise.all(running.map((r) => r.stop()));
  rmSync(dir, { recursive: true, force: true });
});

describe('simulator command line', () => {
  it('generates a scenario from --seed and --count with defaults for the rest', () => {
    const options = parseSimulatorArgs(
      ['--seed', '4', '--count', '3', '--min-ms', '1000', '--max-ms', '2000'],
      {},
    );
    expect(options).toMatchObject({
      port: 0,
      host: '127.0.0.1',
      apiKey: 'demo-key',
      seed: 4,
      history: 0,
      requestLog: null,
    });
    expect(parseSimulatorArgs(['--count', '1', '--history', '500'], {}).history).toBe(500);
    expect(options.scenario).toEqual(
      generateScenario({
        seed: 4,
        count: 3,
        minDurationMs: 1_000,
        maxDurationMs: 2_000,
        startSpreadMs: 5_000,
      }),
    );
    expect(parseSimulatorArgs(['--count', '1'], { DATAFRAMER_API_KEY: 'from-env' }).apiKey).toBe(
      'from-env',
    );
  });

  it('reads --scenario and --faults', () => {
    const scenario = generateScenario({ seed: 8, count: 2 });
    const file = join(dir, 'scenario.json');
    writeFileSync(file, JSON.stringify(scenario));
    const options = parseSimulatorArgs(
      ['--scenario', file, '--faults', '{"serverErrorRate":0.2,"slowMs":10}'],
      {},
    );
    expect(options.scenario).toEqual(scenario);
    expect(options.faults).toEqual({ serverErrorRate: 0.2, slowMs: 10 });
  });

  it.each([
    [[], /--scenario FILE or --count N/],
    [['--count', 'x'], /--count must be an integer/],
    [['--count', '1', '--port', '70000'], /--port must be between 0 and 65535/],
    [['--count', '1', '--faults', '{"serverErrrorRate":1}'], /--faults: .*serverErrrorRate/],
    [['--count', '1', '--faults', '{"resetRate":3}'], /--faults: resetRate:/],
    [['--count', '1', '--faults', '{oops'], /--faults is not JSON/],
    [['--count', '1', '--min-ms', '5000', '--max-ms', '10'], /--max-ms must not be below --min-ms/],
    [['--count', '1', '--bogus'], /Unknown option '--bogus'/],
    [['--scenario', '/nonexistent/s.json'], /scenario file \/nonexistent\/s.json/],
  ])('refuses %j with a usage error', (argv, message) => {
    expect(() => parseSimulatorArgs(argv, {})).toThrow(UsageError);
    expect(() => parseSimulatorArgs(argv, {})).toThrow(message);
  });

  it('announces its URL and runs in one JSON line and writes the request log on stop', async () => {
    const lines: string[] = [];
    const requestLog = join(dir, 'requests.json');
    const options = parseSimulatorArgs(
      [
        '--seed',
        '2',
        '--count',
        '2',
        '--spread-ms',
        '0',
        '--api-key',
        'k',
        '--request-log',
        requestLog,
      ],
      {},
    );
    const sim: RunningSimulator = await startSimulator(options, (line) => lines.push(line));
    running.push(sim);
    expect(lines).toHaveLength(1);
    const announced = JSON.parse(lines[0]!) as { event: string; url: string; runs: string[] };
    expect(announced).toEqual({
      event: 'simulator.listening',
      url: sim.url,
      runs: options.scenario.runs.map((r) => r.runId),
    });
    const res = await fetch(`${announced.url}/api/dataframer/runs/${announced.runs[0]}/`, {
      headers: { authorization: 'Bearer k' },
    });
    expect(Run.parse(await res.json()).status).toBe('PENDING');

    await sim.stop();
    const log = JSON.parse(readFileSync(requestLog, 'utf8')) as {
      startedAt: number;
      runs: { runId: string; finishedAt: number }[];
      requests: { runId: string; status: number }[];
    };
    expect(log.startedAt).toBe(sim.simulator.startedAt);
    expect(log.runs.map((r) => r.runId)).toEqual(announced.runs);
    expect(log.runs[0]!.finishedAt).toBe(sim.simulator.finishedAt(announced.runs[0]!));
    expect(log.requests).toEqual([
      expect.objectContaining({ runId: announced.runs[0], status: 200 }),
    ]);
  });
});

describe('receiver command line', () => {
  it('takes the secret from --secret or WEBHOOK_SECRET and requires one', () => {
    expect(parseReceiverArgs(['--secret', SECRET, '--port', '0', '--log', 'x.json'], {})).toEqual({
      port: 0,
      host: '127.0.0.1',
      secret: SECRET,
      log: 'x.json',
    });
    expect(parseReceiverArgs([], { WEBHOOK_SECRET: SECRET }).secret).toBe(SECRET);
    expect(() => parseReceiverArgs([], {})).toThrow(/--secret is required/);
  });

  it('refuses a secret standardwebhooks cannot use', async () => {
    await expect(
      startReceiver(parseReceiverArgs(['--secret', 'whsec_'], {}), () => {}),
    ).rejects.toThrow(UsageError);
  });

  it('prints its URL, then one line per event, and writes the log on stop', async () => {
    const lines: string[] = [];
    const log = join(dir, 'deliveries.json');
    const rec: RunningReceiver = await startReceiver(
      parseReceiverArgs(['--secret', SECRET, '--log', log], {}),
      (line) => lines.push(line),
    );
    running.push(rec);
    expect(JSON.parse(lines[0]!)).toEqual({ event: 'receiver.listening', url: rec.url });

    const body = JSON.stringify({
      type: 'run.canceled',
      data: {
        run_id: '3c90c3cc-0d44-4b50-8888-8dd25736052a',
        status: 'CANCELED',
        samples_completed: 3,
        samples_failed: 1,
        total_cost: 0.04,
        generated_files: [],
      },
    });
    const at = new Date();
    const res = await fetch(rec.url, {
      method: 'POST',
      body,
      headers: {
        'webhook-id': 'msg_a',
        'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
        'webhook-signature': new Webhook(SECRET).sign('msg_a', at, body),
      },
    });
    expect(res.status).toBe(200);
    expect(lines[1]).toBe('⊘ run.canceled 3c90c3cc… CANCELED 3 ok / 1 failed $0.04 0 files');

    await rec.stop();
    const written = JSON.parse(readFileSync(log, 'utf8')) as Record<string, unknown>;
    expect(written).toMatchObject({ attempts: 1, duplicates: 0, rejected: 0 });
    expect(written['deliveries']).toEqual([
      expect.objectContaining({ webhookId: 'msg_a', body: JSON.parse(body) as unknown }),
    ]);
  });
});
