import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import {
  Scenario,
  finishOffsetMs,
  generateScenario,
  loadScenarioFile,
  type RunTimeline,
} from '../../src/demo/scenario.js';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('generateScenario', () => {
  it('gives the same scenario for the same seed and a different one for another seed', () => {
    const a = generateScenario({ seed: 42, count: 20 });
    const b = generateScenario({ seed: 42, count: 20 });
    const c = generateScenario({ seed: 43, count: 20 });
    expect(b).toEqual(a);
    expect(c.runs.map((r) => r.runId)).not.toEqual(a.runs.map((r) => r.runId));
  });

  it('makes unique UUID v4-shaped run ids', () => {
    const { runs } = generateScenario({ seed: 7, count: 500 });
    expect(runs).toHaveLength(500);
    for (const run of runs) expect(run.runId).toMatch(UUID_V4);
    expect(new Set(runs.map((r) => r.runId)).size).toBe(500);
  });

  it('keeps starts within the spread and lives within the duration bounds', () => {
    const { runs } = generateScenario({
      seed: 1,
      count: 300,
      startSpreadMs: 2_000,
      minDurationMs: 4_000,
      maxDurationMs: 9_000,
    });
    for (const run of runs) {
      expect(run.startMs).toBeGreaterThanOrEqual(0);
      expect(run.startMs).toBeLessThan(2_000);
      const life = run.pendingMs + run.processingMs;
      expect(life).toBeGreaterThanOrEqual(4_000);
      expect(life).toBeLessThanOrEqual(9_000);
      expect(run.pendingMs).toBeGreaterThan(0);
      expect(run.processingMs).toBeGreaterThan(run.pendingMs);
      expect(run.failedRatio).toBeGreaterThanOrEqual(0);
      expect(run.failedRatio).toBeLessThanOrEqual(1);
    }
  });

  it('draws outcomes by weight, leaving out the outcomes not listed', () => {
    const only = generateScenario({ seed: 3, count: 100, outcomes: { FAILED: 1 } });
    expect(new Set(only.runs.map((r) => r.outcome))).toEqual(new Set(['FAILED']));

    const mixed = generateScenario({
      seed: 3,
      count: 2_000,
      outcomes: { SUCCEEDED: 3, CANCELED: 1 },
    });
    const canceled = mixed.runs.filter((r) => r.outcome === 'CANCELED').length;
    expect(mixed.runs.some((r) => r.outcome === 'FAILED')).toBe(false);
    expect(canceled / 2_000).toBeGreaterThan(0.2);
    expect(canceled / 2_000).toBeLessThan(0.3);
  });

  it('uses every outcome and shape by default, and only the shapes asked for', () => {
    const all = generateScenario({ seed: 9, count: 300 });
    expect(new Set(all.runs.map((r) => r.outcome))).toEqual(
      new Set(['SUCCEEDED', 'FAILED', 'CANCELED']),
    );
    expect(new Set(all.runs.map((r) => r.shape))).toEqual(new Set(['linear', 'steps', 'tail']));

    const tails = generateScenario({ seed: 9, count: 50, shapes: ['tail'] });
    expect(new Set(tails.runs.map((r) => r.shape))).toEqual(new Set(['tail']));
  });

  it('produces scenarios its own schema accepts', () => {
    const scenario = generateScenario({ seed: 11, count: 50 });
    expect(Scenario.parse(scenario)).toEqual(scenario);
  });

  it('refuses impossible options', () => {
    expect(() => generateScenario({ seed: 1, count: -1 })).toThrow(RangeError);
    expect(() =>
      generateScenario({ seed: 1, count: 1, minDurationMs: 10, maxDurationMs: 5 }),
    ).toThrow(RangeError);
    expect(() => generateScenario({ seed: 1, count: 1, outcomes: { FAILED: 0 } })).toThrow(
      RangeError,
    );
    expect(() => generateScenario({ seed: 1, count: 1, shapes: [] })).toThrow(RangeError);
  });
});

describe('finishOffsetMs', () => {
  it('adds the start, the pending and the processing time', () => {
    const run: RunTimeline = {
      runId: '3c90c3cc-0d44-4b50-8888-8dd25736052a',
      startMs: 100,
      pendingMs: 200,
      processingMs: 3_000,
      outcome: 'SUCCEEDED',
      numberOfSamples: 10,
      shape: 'linear',
      failedRatio: 0,
    };
    expect(finishOffsetMs(run)).toBe(3_300);
  });
});

describe('loadScenarioFile', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'scenario-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  const write = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  it('reads a valid file', () => {
    const scenario = generateScenario({ seed: 5, count: 3 });
    expect(loadScenarioFile(write('ok.json', JSON.stringify(scenario)))).toEqual(scenario);
  });

  it('names the file and the offending path', () => {
    const scenario = generateScenario({ seed: 5, count: 3 });
    const broken = {
      runs: scenario.runs.map((run, i) => (i === 2 ? { ...run, outcome: 'DONE' } : run)),
    };
    const path = write('bad.json', JSON.stringify(broken));
    expect(() => loadScenarioFile(path)).toThrow(`scenario file ${path}: runs[2].outcome:`);
  });

  it('rejects unknown keys and duplicate run ids', () => {
    const [run] = generateScenario({ seed: 5, count: 1 }).runs;
    const typo = write('typo.json', JSON.stringify({ runs: [{ ...run, pendingMS: 5 }] }));
    expect(() => loadScenarioFile(typo)).toThrow(/runs\[0\]: Unrecognized key: "pendingMS"/);
    const twice = write('twice.json', JSON.stringify({ runs: [run, run] }));
    expect(() => loadScenarioFile(twice)).toThrow(/runs\[1\]\.runId: duplicate run id/);
  });

  it('names the file when it is not JSON or missing', () => {
    const path = write('not.json', '{"runs": [');
    expect(() => loadScenarioFile(path)).toThrow(`scenario file ${path}:`);
    expect(() => loadScenarioFile(join(dir, 'missing.json'))).toThrow(/ENOENT/);
  });
});
