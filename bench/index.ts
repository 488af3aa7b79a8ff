/**
 * `npm run bench`: builds the watcher, then measures it against the local simulator, every
 * part in its own process on 127.0.0.1: the 200-run comparison of the three poll policies and
 * the 10,000-run scale run. Prints the tables and writes bench/RESULTS.md. Takes about 6 minutes.
 *
 * `npm run bench -- comparison`, `-- scale`, `-- replay` or `-- intake` runs one part (printed
 * only, RESULTS.md untouched). `intake` adds 1,000 runs through the run API to a watcher with
 * 10,000, at two rate caps.
 *
 * `npm run bench -- soak [--minutes 10]` is the soak, never part of the default run: 1,000 runs
 * polled for 10 minutes with faults on; it writes (or replaces) the Soak section of RESULTS.md,
 * which a default run keeps.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { COMPARISON_ENV, comparisonScenario, runPolicy, type PolicyResult } from './comparison.js';
import { ROOT, stopAll } from './processes.js';
import { fixed, machine, mb, met, ratio, seconds, table } from './report.js';
import { FANOUT_CAPS, runScale, SCALE_RUNS, V8_YOUNG_GEN, type ScaleResult } from './scale.js';
import { mean, percentile } from './stats.js';
import { present } from './analysis.js';
import { INTAKE_ADDED, INTAKE_WATCHED, runIntake, type IntakeResult } from './intake.js';
import { REPLAY_SEEDS, replayTable, RUN_KINDS } from './replay.js';
import {
  runSoak,
  SOAK_DEFAULT_MINUTES,
  SOAK_RUNS,
  soakSection,
  soakSectionOf,
  withSoakSection,
} from './soak.js';

const RESULTS = path.join(ROOT, 'bench', 'RESULTS.md');

/** The parts named on the command line, and `--minutes N` for the soak. */
function parseArgs(args: string[]): { parts: string[]; minutes: number } {
  const at = args.indexOf('--minutes');
  if (at === -1) return { parts: args, minutes: SOAK_DEFAULT_MINUTES };
  const minutes = Number(args[at + 1]);
  if (!Number.isInteger(minutes) || minutes < 2)
    throw new Error('--minutes must be a whole number ≥ 2');
  return { parts: args.filter((_, i) => i !== at && i !== at + 1), minutes };
}

const TARGET = {
  pollsRatio: 0.25,
  detectionP95Ms: 1_500,
  rssBytes: 150 * 1024 * 1024,
  cpuShare: 0.2,
  firstTickMs: 1_500,
  fanoutPerSecond: 500,
};

function comparisonTable(results: PolicyResult[]): string {
  const base = results.find((r) => r.policy === 'fixed');
  const others = results.filter((r) => r.policy !== 'fixed');
  const header = [
    'figure',
    ...results.map((r) => r.policy),
    ...others.map((r) => `${r.policy} / fixed`),
  ];
  const row = (
    name: string,
    pick: (r: PolicyResult) => number,
    format: (v: number) => string,
    withRatio = true,
  ) => [
    name,
    ...results.map((r) => format(pick(r))),
    ...others.map((r) => (withRatio && base ? ratio(pick(r), pick(base)) : '-')),
  ];
  return table(header, [
    row(
      'polls per run, mean',
      (r) => r.pollsMean,
      (v) => fixed(v),
    ),
    row(
      'polls per run, median',
      (r) => r.pollsMedian,
      (v) => fixed(v),
    ),
    row('detection p50 (s)', (r) => r.detectionP50, seconds),
    row('detection p95 (s)', (r) => r.detectionP95, seconds),
    row('detection max (s)', (r) => r.detectionMax, seconds),
    row('webhook latency p50 (s)', (r) => r.webhookP50, seconds),
    row('webhook latency p95 (s)', (r) => r.webhookP95, seconds),
    row('webhook latency max (s)', (r) => r.webhookMax, seconds),
    row(
      'watcher CPU (s)',
      (r) => r.cpuSeconds,
      (v) => fixed(v, 2),
    ),
    row('watcher peak RSS (MB)', (r) => r.peakRssBytes, mb),
    row(
      'API requests, peak per 1 s',
      (r) => r.peakRequestsPerSecond,
      (v) => fixed(v, 0),
    ),
    row(
      'wall time (s)',
      (r) => r.wallSeconds,
      (v) => fixed(v),
    ),
    row('runs without a poll that saw the end', (r) => r.missedTerminal, String, false),
    row('polls after the end was seen', (r) => r.pollsAfterTerminal, String, false),
    row('runs without a webhook', (r) => r.notDelivered, String, false),
    row('duplicate deliveries', (r) => r.duplicates, String, false),
  ]).concat(
    `\n\nWatcher exit codes: ${results.map((r) => `${r.policy} ${r.exit}`).join(', ')} ` +
      '(1: every run ended, some did not succeed, as the scenario intends).',
  );
}

/** Polls and detection by kind of run: where each policy spends and where it is late. */
function breakdownTable(results: PolicyResult[], shapeOf: Map<string, string>): string {
  const rows: string[][] = [];
  for (const [name, match] of RUN_KINDS) {
    const row = [name];
    for (const result of results) {
      const runs = result.runs.filter((r) => match(r.outcome, shapeOf.get(r.runId) ?? ''));
      if (row.length === 1) row.push(String(runs.length));
      const detection = present(runs.map((r) => r.detectionMs));
      row.push(`${fixed(mean(runs.map((r) => r.polls)))} / ${seconds(percentile(detection, 95))}`);
    }
    rows.push(row);
  }
  return table(
    ['runs', 'count', ...results.map((r) => `${r.policy}: polls mean / detection p95 (s)`)],
    rows,
  );
}

function steadyTable(s: ScaleResult): string {
  const a = s.steady;
  const b = s.steadyV8YoungGen;
  return table(
    [
      'figure (30 s window after 10 s of warm-up)',
      'defaults',
      `V8's sizing (${V8_YOUNG_GEN})`,
      'target',
      'met (defaults)',
    ],
    [
      [
        'CPU, share of one core',
        fixed(a.cpuShare, 3),
        fixed(b.cpuShare, 3),
        '< 0.2',
        met(a.cpuShare < TARGET.cpuShare),
      ],
      [
        'RSS, max (MB)',
        mb(a.rssMaxBytes),
        mb(b.rssMaxBytes),
        '≤ 150',
        met(a.rssMaxBytes <= TARGET.rssBytes),
      ],
      ['RSS, median (MB)', mb(a.rssMedianBytes), mb(b.rssMedianBytes), '', ''],
      ['peak RSS since start, VmHWM (MB)', mb(a.hwmBytes), mb(b.hwmBytes), '', ''],
      [
        'API requests per s, mean / most in 1 s (cap 20)',
        `${fixed(a.requestsPerSecond)} / ${a.peakRequestsPerSecond}`,
        `${fixed(b.requestsPerSecond)} / ${b.peakRequestsPerSecond}`,
        '≤ 20 / ≤ 40',
        met(a.requestsPerSecond <= 20.5 && a.peakRequestsPerSecond <= 40),
      ],
    ],
  );
}

function scaleTable(s: ScaleResult): string {
  const f = s.fanout;
  return table(
    ['figure', 'value', 'target', 'met'],
    [
      ['runs watched', String(s.runs), '', ''],
      [
        'start to first tick, 10,000 runs in the store (s)',
        seconds(s.firstTickMs),
        '≤ 1.50',
        met(s.firstTickMs <= TARGET.firstTickMs),
      ],
      ['of which inside startApp (`startup_ms`, s)', seconds(s.startupMs), '', ''],
      [
        'fan-out: deliveries per s at the receiver, first to last',
        fixed(f.perSecond, 0),
        '≥ 500',
        met(f.perSecond >= TARGET.fanoutPerSecond),
      ],
      [
        'fan-out: deliveries / first to last receipt (s)',
        `${f.deliveries} / ${seconds(f.spanMs)}`,
        '',
        '',
      ],
      ['fan-out: most deliveries in 1 s', String(f.peakPerSecond), '', ''],
      ['fan-out: the runs ended within (s)', seconds(f.endsSpreadMs), '', ''],
      ['fan-out: first to last poll that saw an end (s)', seconds(f.endsSeenWithinMs), '', ''],
      [
        'fan-out: watcher start to the last delivery (s)',
        seconds(f.lastDeliveryAfterStartMs),
        '',
        '',
      ],
      [
        `fan-out: API requests, most in 1 s (cap ${FANOUT_CAPS.POLL_RATE_PER_SECOND}, burst as much)`,
        String(f.peakRequestsPerSecond),
        '',
        '',
      ],
      [
        'fan-out: watcher CPU (s) / peak RSS (MB)',
        `${fixed(f.cpuSeconds, 2)} / ${mb(f.peakRssBytes)}`,
        '',
        '',
      ],
      ['fan-out: start to first tick (s)', seconds(f.firstTickMs), '', ''],
      [
        'missed ends / polls after the end / runs without a webhook',
        `${f.missedTerminal} / ${f.pollsAfterTerminal} / ${f.notDelivered}`,
        '0 / 0 / 0',
        met(f.missedTerminal + f.pollsAfterTerminal + f.notDelivered === 0),
      ],
      ['fan-out watcher exit code', String(f.exit), '', ''],
    ],
  );
}

function targetsTable(results: PolicyResult[]): string {
  const adaptive = results.find((r) => r.policy === 'adaptive');
  const base = results.find((r) => r.policy === 'fixed');
  if (!adaptive || !base) return '';
  const pollsRatio = adaptive.pollsMean / base.pollsMean;
  const succeededP95 = percentile(
    present(adaptive.runs.filter((r) => r.outcome === 'SUCCEEDED').map((r) => r.detectionMs)),
    95,
  );
  const guarantees = results.every(
    (r) => r.missedTerminal + r.pollsAfterTerminal + r.notDelivered + r.duplicates === 0,
  );
  return table(
    ['target (200 runs)', 'measured', 'met'],
    [
      [
        'adaptive polls per run ≤ 0.25× fixed',
        `${pollsRatio.toFixed(3)}× (${fixed(adaptive.pollsMean)} vs ${fixed(base.pollsMean)})`,
        met(pollsRatio <= TARGET.pollsRatio),
      ],
      [
        'adaptive detection p95 ≤ 1.5 s, runs that SUCCEEDED (linear, steps, tail: the end ' +
          'shows in progress)',
        `${seconds(succeededP95)} s`,
        met(succeededP95 <= TARGET.detectionP95Ms),
      ],
      [
        'adaptive detection p95 ≤ 1.5 s, all runs (with FAILED and CANCELED, whose end ' +
          'shows nowhere before it happens)',
        `${seconds(adaptive.detectionP95)} s`,
        met(adaptive.detectionP95 <= TARGET.detectionP95Ms),
      ],
      [
        'every end seen, no poll after it, every webhook delivered once (all policies)',
        guarantees ? 'yes' : 'no',
        met(guarantees),
      ],
    ],
  );
}

function intakeSection(results: IntakeResult[]): string {
  const ms = (value: number) => `${fixed(value, 0)} ms`;
  return (
    `## ${INTAKE_ADDED.toLocaleString('en')} runs added through the API to a watcher with ` +
    `${INTAKE_WATCHED.toLocaleString('en')}\n\n` +
    'Scale settings (`POLL_MIN_INTERVAL_MS=5000`) with `POLL_MAX_INTERVAL_MS=10000`, so the ' +
    '10,000 runs want about 1,000 polls a second and the rate cap is always used up: the case ' +
    'where a new run could wait behind all the others. The 10,000 runs come from the config ' +
    'file, were each looked at once by an earlier start, and none ends during the bench. ' +
    'After 10 s of warm-up, the ' +
    '1,000 runs are added 10 per `POST /api/runs`, one request after the other. A run never ' +
    'looked at goes ahead of the polls waiting for the rate limit, so the new runs get the ' +
    "key's whole budget until each has been seen; at 20 requests a second, 1,000 first looks " +
    'still take 50 s, so most cannot be within 5 s at that cap; the second column raises it ' +
    'to 250.\n\n' +
    table(
      ['figure', ...results.map((r) => `POLL_RATE_PER_SECOND=${r.ratePerSecond}`)],
      (
        [
          [
            'POST /api/runs (10 runs), p50 / p95 / max',
            (r) => `${ms(r.postP50Ms)} / ${ms(r.postP95Ms)} / ${ms(r.postMaxMs)}`,
          ],
          ['GET /api/runs?limit=100, p95', (r) => ms(r.listP95Ms)],
          [
            'added to first poll, p50 / p95 / max',
            (r) =>
              `${seconds(r.firstPollP50Ms)} / ${seconds(r.firstPollP95Ms)} / ${seconds(r.firstPollMaxMs)}`,
          ],
          [
            'first poll within POLL_MIN_INTERVAL_MS (5 s)',
            (r) => `${r.firstPollWithinMin} of ${INTAKE_ADDED}`,
          ],
          ['first looks per second', (r) => fixed(r.firstLooksPerSecond, 1)],
          ['never polled (the bench waits 1,000 / cap + 10 s)', (r) => String(r.neverPolled)],
        ] as [string, (r: IntakeResult) => string][]
      ).map(([label, cell]) => [label, ...results.map(cell)]),
    )
  );
}

async function main(): Promise<void> {
  process.once('SIGINT', () => {
    stopAll();
    process.exit(130);
  });
  const { parts, minutes: soakMinutes } = parseArgs(process.argv.slice(2));
  const want = (part: string) => (parts.length === 0 ? part !== 'soak' : parts.includes(part));
  let soak: string | null = null;
  const baseDir = mkdtempSync(path.join(tmpdir(), 'watcher-bench-'));
  const log = (line: string) => console.log(line);
  const startedAt = Date.now();
  const sections: string[] = [];
  let failed = false;
  try {
    if (want('comparison')) {
      const scenario = comparisonScenario();
      const shapeOf = new Map(scenario.runs.map((r) => [r.runId.toLowerCase(), r.shape]));
      const results: PolicyResult[] = [];
      for (const policy of ['fixed', 'exponential', 'adaptive'] as const) {
        log(`comparison: ${policy} (about 75 s)`);
        results.push(await runPolicy(policy, scenario, baseDir));
      }
      sections.push(
        '## Targets, 200 runs\n\n' + targetsTable(results),
        `## 200 runs, three policies side by side\n\n${scenario.runs.length} runs created over ` +
          '10 s, each 10-60 s long (10-25% PENDING), outcomes about 80% SUCCEEDED, 10% FAILED, ' +
          '10% CANCELED, progress shapes linear, steps and tail. The same caps for every policy: ' +
          Object.entries(COMPARISON_ENV)
            .map(([k, v]) => `\`${k}=${v}\``)
            .join(', ') +
          `; everything else at its default.\n\n${comparisonTable(results)}`,
        `### By kind of run\n\n${breakdownTable(results, shapeOf)}`,
      );
    }
    if (want('replay')) {
      log(`replay: ${REPLAY_SEEDS} seeds of the comparison's scenario, in virtual time`);
      sections.push(
        `## Replay: ${REPLAY_SEEDS} × 200 runs in virtual time\n\n` +
          'The policy and the run state machine of the watcher (the same functions) replayed on ' +
          `the comparison's scenario under seeds 1-${REPLAY_SEEDS}, in virtual time: no processes, ` +
          'no network, no caps. Many more runs than the live comparison, so a figure here is ' +
          'steadier; the live comparison above is the measurement of the real program.\n\n' +
          replayTable(comparisonScenario, {
            minMs: Number(COMPARISON_ENV.POLL_MIN_INTERVAL_MS),
            maxMs: Number(COMPARISON_ENV.POLL_MAX_INTERVAL_MS),
          }),
      );
    }
    if (want('scale')) {
      log(`scale: ${SCALE_RUNS} runs (about 3 min)`);
      const scale = await runScale(baseDir, log);
      sections.push(
        `## ${SCALE_RUNS.toLocaleString('en')} runs\n\n` +
          'Defaults except `POLL_MIN_INTERVAL_MS=5000` (so `POLL_RATE_PER_SECOND=20`, ' +
          '`POLL_CONCURRENCY=8`, `POLL_MAX_INTERVAL_MS=60000`). One store filled by a first ' +
          'start, stopped with SIGTERM; a second start is measured (first tick, then a 30 s ' +
          'window after 10 s of warm-up) and stopped; a third start does the same with ' +
          `\`NODE_OPTIONS=${V8_YOUNG_GEN}\` (V8 sizes the young generation itself; by default ` +
          'npm start and the image launch it with 8 MB semi-spaces). Then every run ends, within 3 s of each ' +
          'other, ' +
          'and a watcher with a fresh store and ' +
          Object.entries(FANOUT_CAPS)
            .map(([k, v]) => `\`${k}=${v}\``)
            .join(' and ') +
          ' is given the 10,000 runs: every first poll (spread over `POLL_MIN`) sees an end, and ' +
          'it delivers the webhooks; at ' +
          '20 requests per second seeing 10,000 ends would take 500 s whatever the policy, so ' +
          'this measures the delivery side. Live detection is what the 200-run comparison ' +
          'measures.\n\n' +
          `### Steady state\n\n${steadyTable(scale)}\n\n### Start and fan-out\n\n${scaleTable(scale)}`,
      );
    }
    if (want('intake')) {
      log(`intake: ${INTAKE_ADDED} runs added through the API to ${INTAKE_WATCHED} (about 1 min)`);
      const atDefault = await runIntake(baseDir, log, 20);
      sections.push(intakeSection([atDefault, await runIntake(baseDir, log, 250)]));
    }
    if (want('soak')) {
      log(`soak: ${SOAK_RUNS} runs for ${soakMinutes} min`);
      soak = soakSection(await runSoak(baseDir, soakMinutes, log));
      sections.push(soak);
    }
  } catch (error) {
    failed = true;
    console.error(error);
    console.error(`bench failed; its files are kept in ${baseDir}`);
  }
  const minutes = ((Date.now() - startedAt) / 60_000).toFixed(1);
  const body = sections.join('\n\n');
  console.log(`\n${body}\n\nbench took ${minutes} min`);
  const previous = existsSync(RESULTS) ? readFileSync(RESULTS, 'utf8') : '';
  if (!failed && soak !== null) {
    writeFileSync(RESULTS, withSoakSection(previous, soak));
    console.log('Soak section written to bench/RESULTS.md');
  }
  if (!failed && parts.length === 0) {
    const header =
      '# Benchmark results\n\nWritten by `npm run bench` (bench/index.ts); do not edit by hand. ' +
      `Run on ${new Date().toISOString().slice(0, 10)}, took ${minutes} min.\n\n` +
      `## Machine\n\n${table(['', ''], machine())}\n\n` +
      'Every process (simulator, receiver, watcher) runs on this one machine on 127.0.0.1, so ' +
      'they share its cores; figures are for comparing side by side, not absolute.';
    const kept = soakSectionOf(previous);
    writeFileSync(RESULTS, `${header}\n\n${body}\n${kept ? `\n${kept}\n` : ''}`);
    console.log('written to bench/RESULTS.md');
  }
  stopAll();
  if (!failed) rmSync(baseDir, { recursive: true, force: true });
  process.exitCode = failed ? 1 : 0;
}

await main();
