import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { ENV_SETTINGS } from '../../src/config/load.js';
import { EVENTS } from '../../src/logging.js';

// The README and .env.example are what operators code against: they cannot drift from the code.

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const envExample = readFileSync(new URL('../../.env.example', import.meta.url), 'utf8');
const settings = [...Object.keys(ENV_SETTINGS), 'CONFIG_FILE'].sort();

function section(heading: string): string {
  const start = readme.indexOf(`\n## ${heading}\n`);
  if (start < 0) throw new Error(`README has no "## ${heading}" section`);
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}

describe('docs match the code', () => {
  it("the README's settings table lists every setting, and nothing else", () => {
    const rows = section('Settings')
      .split('\n')
      .map((line) => /^\| `([A-Z][A-Z0-9_]+)`/.exec(line)?.[1])
      .filter((name): name is string => name !== undefined);
    expect([...new Set(rows)].sort()).toEqual(settings);
  });

  it('.env.example names every setting, and nothing else', () => {
    const names = envExample
      .split('\n')
      .map((line) => /^#? ?([A-Z][A-Z0-9_]+)=/.exec(line)?.[1])
      .filter((name): name is string => name !== undefined);
    expect([...new Set(names)].sort()).toEqual(settings);
  });

  it("every event the code can log is in the README's events table", () => {
    const events = section('Events');
    expect(EVENTS.filter((event) => !events.includes(`\`${event}\``))).toEqual([]);
  });
});
