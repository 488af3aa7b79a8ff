import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from '@jest/globals';
import { ENV_SETTINGS } from '../../src/config/load.js';
import { EVENTS } from '../../src/logging.js';

// The README, docs/ and .env.example are what operators code against: they cannot drift from
// the code, and their links cannot point at files that are not there.

const root = fileURLToPath(new URL('../../', import.meta.url));
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');
const readme = read('README.md');
const eventsDoc = read('docs/events.md');
const envExample = read('.env.example');
const settings = [...Object.keys(ENV_SETTINGS), 'CONFIG_FILE'].sort();

function section(doc: string, name: string, heading: string): string {
  const start = doc.indexOf(`\n## ${heading}\n`);
  if (start < 0) throw new Error(`${name} has no "## ${heading}" section`);
  const end = doc.indexOf('\n## ', start + 1);
  return doc.slice(start, end < 0 ? undefined : end);
}

/** The repository-relative targets of the relative links in a markdown file, anchors dropped. */
function relativeLinks(file: string): string[] {
  const text = read(file)
    .replace(/^(```|~~~)[^]*?^\1/gm, '') // fenced code is not markdown
    .replace(/`[^`\n]*`/g, ''); // nor is inline code
  const targets = [...text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map(
    (match) => match[1]!,
  );
  return targets
    .filter((target) => !/^[a-z][a-z0-9+.-]*:/i.test(target)) // http(s), mailto, …
    .map((target) => decodeURIComponent(target.split('#')[0]!))
    .filter((target) => target !== '') // a pure #anchor stays in the file
    .map((target) => path.relative(root, path.resolve(root, path.dirname(file), target)))
    .map((target) => target.split(path.sep).join('/'));
}

describe('docs match the code', () => {
  it("the README's settings table lists every setting, and nothing else", () => {
    const rows = section(readme, 'README', 'Settings')
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

  it("every event the code can log is in docs/events.md's events table", () => {
    const events = section(eventsDoc, 'docs/events.md', 'Events');
    expect(EVENTS.filter((event) => !events.includes(`\`${event}\``))).toEqual([]);
  });

  it('every relative link in the README, CONTRIBUTING.md and docs/ points to a file here', () => {
    const files = [
      'README.md',
      'CONTRIBUTING.md',
      ...readdirSync(path.join(root, 'docs'))
        .filter((name) => name.endsWith('.md'))
        .map((name) => `docs/${name}`),
    ];
    const broken = files.flatMap((file) =>
      relativeLinks(file)
        .filter((target) => target.startsWith('..') || !existsSync(path.join(root, target)))
        .map((target) => `${file} -> ${target}`),
    );
    expect(broken).toEqual([]);
  });
});
