import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from '@jest/globals';

// docs/architecture.md says which folder of src/ may import which; this keeps it true.

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));
const doc = readFileSync(new URL('../../docs/architecture.md', import.meta.url), 'utf8');

/** The "Folders" table: folder name to the folders it may import (`*` for "every folder but"). */
function allowedImports(): Map<string, { only: Set<string> } | { except: Set<string> }> {
  const rules = new Map<string, { only: Set<string> } | { except: Set<string> }>();
  for (const line of doc.split('\n')) {
    const cells = line.split('|').map((cell) => cell.trim());
    const folder = /^`([a-z]+)`$/.exec(cells[1] ?? '')?.[1];
    if (!folder || cells.length < 5) continue;
    const names = new Set([...(cells[3] ?? '').matchAll(/`([a-z]+)`/g)].map((m) => m[1]!));
    rules.set(
      folder,
      cells[3]!.startsWith('every folder but') ? { except: names } : { only: names },
    );
  }
  return rules;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

/** A file's folder under src/: its first directory, or its own name for a top-level file. */
function folderOf(file: string): string {
  const [first, second] = path.relative(SRC, file).split(path.sep);
  return second === undefined ? path.basename(first!, '.ts') : first!;
}

function relativeImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]!);
}

/** Every import from one folder to another, as `from -> to (file: specifier)`. */
function crossFolderImports(): { from: string; to: string; where: string }[] {
  return sourceFiles(SRC).flatMap((file) => {
    const from = folderOf(file);
    return relativeImports(file)
      .map((specifier) => ({
        from,
        to: folderOf(path.resolve(path.dirname(file), specifier.replace(/\.js$/, '.ts'))),
        where: `${path.relative(SRC, file)}: ${specifier}`,
      }))
      .filter(({ to }) => to !== from);
  });
}

describe('import direction (docs/architecture.md, Folders)', () => {
  const rules = allowedImports();
  const imports = crossFolderImports();

  it('the table names every folder of src/', () => {
    const folders = new Set(sourceFiles(SRC).map(folderOf));
    expect([...folders].sort()).toEqual([...rules.keys()].sort());
  });

  it('reads the imports it checks (a parser that found none would pass anything)', () => {
    const edges = new Set(imports.map(({ from, to }) => `${from} -> ${to}`));
    expect(edges).toContain('app -> lifecycle');
    expect(edges).toContain('store -> domain');
    expect(edges).toContain('main -> cli');
  });

  it('every import stays within what the table allows', () => {
    const broken = imports.filter(({ from, to }) => {
      const rule = rules.get(from);
      return !rule || ('only' in rule ? !rule.only.has(to) : rule.except.has(to));
    });
    expect(broken.map(({ from, to, where }) => `${from} may not import ${to} (${where})`)).toEqual(
      [],
    );
  });
});
