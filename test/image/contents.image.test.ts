import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { BASE_IMAGE, IMAGE, RUNTIME, ULIMITS, podmanOk } from './podman.js';

/**
 * What the image holds and says about itself: its own layers' size, no dev dependencies, tests,
 * bench or sources, the OCI labels, and the SBOM written beside it (scripts/image/build.sh).
 */

const describeImage = IMAGE ? describe : describe.skip;
const SBOM = process.env['WATCHER_SBOM'] ?? 'dist/image/sbom.cdx.json';
const MAX_OWN_BYTES = 30_000_000;

const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as {
  name: string;
  version: string;
  license: string;
};

interface LockEntry {
  version?: string;
  dev?: boolean;
  link?: boolean;
}
type Lock = { packages: Record<string, LockEntry> };

const lock = JSON.parse(readFileSync('package-lock.json', 'utf8')) as Lock;

/** `node_modules/@scope/name` and nested paths: the package name is what follows the last one. */
const nameOf = (key: string) =>
  key.slice(key.lastIndexOf('node_modules/') + 'node_modules/'.length);

/**
 * Runs a command in a throwaway container of the image; its stdout. The output goes through a
 * file on a mounted directory, not the container's stdout: podman can lose the output of a
 * container that exits at once (a known race of `run --rm` under load), which read as "".
 */
async function inImage(script: string): Promise<string> {
  const out = mkdtempSync(path.join(tmpdir(), 'image-out-'));
  chmodSync(out, 0o777); // the image runs as uid 1000
  try {
    await podmanOk([
      '--runtime',
      RUNTIME,
      'run',
      '--rm',
      '--no-healthcheck',
      '--network=none',
      ...ULIMITS,
      '--volume',
      `${out}:/out`,
      '--entrypoint',
      'sh',
      IMAGE,
      '-c',
      `(${script}) > /out/stdout`,
    ]);
    return readFileSync(path.join(out, 'stdout'), 'utf8');
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

async function imageSize(image: string): Promise<number> {
  return Number((await podmanOk(['image', 'inspect', '--format', '{{.Size}}', image])).trim());
}

describeImage(`what the image ${IMAGE} holds`, () => {
  it('(7) its own layers above the base are at most 30 MB', async () => {
    expect(BASE_IMAGE).not.toBe('');
    const baseLayers = (
      await podmanOk(['image', 'inspect', '--format', '{{json .RootFS.Layers}}', BASE_IMAGE])
    ).trim();
    const layers = JSON.parse(
      (await podmanOk(['image', 'inspect', '--format', '{{json .RootFS.Layers}}', IMAGE])).trim(),
    ) as string[];
    const base = new Set(JSON.parse(baseLayers) as string[]);
    // Built on the base: every base layer is there, in order, below the image's own.
    expect(layers.slice(0, base.size)).toEqual([...base]);
    const own = (await imageSize(IMAGE)) - (await imageSize(BASE_IMAGE));
    const history = await podmanOk(['history', '--format', '{{.Size}}\t{{.CreatedBy}}', IMAGE]);
    const rows = history
      .split('\n')
      .filter((row) => row !== '' && !row.startsWith('0 B'))
      .map((row) => row.slice(0, 100));
    console.log(
      `own layers: ${(own / 1e6).toFixed(1)} MB (${layers.length - base.size} layers above the base)\n${rows.join('\n')}`,
    );
    expect(own).toBeGreaterThan(0);
    expect(own).toBeLessThanOrEqual(MAX_OWN_BYTES);
  });

  it('(7) holds the built program and production dependencies only: no dev dependencies, tests, bench, sources or source maps', async () => {
    const [top, files, hidden, installed] = (
      await inImage(
        [
          'cd /app',
          'ls -A',
          'echo ---',
          'find . -path ./node_modules -prune -o -type f -print | sort',
          'echo ---',
          'cat node_modules/.package-lock.json',
          'echo ---',
          // Every installed package, nested ones included.
          'find node_modules -name package.json -path "*node_modules/*" | sed -n "s#/package.json\\$##p" | sort',
        ].join('\n'),
      )
    ).split('---\n');
    expect(top!.split('\n').filter(Boolean).sort()).toEqual([
      'config',
      'dist',
      'node_modules',
      'package.json',
    ]);
    const own = files!.split('\n').filter(Boolean);
    expect(
      own.filter(
        (file) => !/^\.\/(dist\/.+\.js|config\/[^/]+\.(json|ya?ml)|package\.json)$/.test(file),
      ),
    ).toEqual([]);
    expect(own).toContain('./dist/main.js');

    // npm's own record of what `npm ci --omit=dev` installed is the lockfile's production part.
    const installedKeys = Object.keys((JSON.parse(hidden!) as Lock).packages).sort();
    const production = Object.entries(lock.packages)
      .filter(([key, entry]) => key !== '' && !entry.dev)
      .map(([key]) => key)
      .sort();
    const dev = Object.entries(lock.packages)
      .filter(([, entry]) => entry.dev)
      .map(([key]) => key);
    expect(installedKeys).toEqual(production);
    // And what is on disk agrees (a package.json in a package's own subfolder aside).
    const onDisk = new Set(installed!.split('\n').filter(Boolean));
    for (const key of production) expect(onDisk).toContain(key);
    expect(dev.filter((key) => onDisk.has(key))).toEqual([]);
    for (const name of ['typescript', 'jest', 'ts-jest', 'eslint', 'prettier', 'nock', 'node']) {
      expect(onDisk).not.toContain(`node_modules/${name}`);
    }
  });

  it('(8) carries the OCI labels, set at build time', async () => {
    const labels = JSON.parse(
      await podmanOk(['image', 'inspect', '--format', '{{json .Config.Labels}}', IMAGE]),
    ) as Record<string, string>;
    console.log(
      Object.entries(labels)
        .filter(([key]) => key.startsWith('org.opencontainers.'))
        .map(([key, value]) => `${key}=${value}`)
        .join('\n'),
    );
    expect(labels).toMatchObject({
      'org.opencontainers.image.title': pkg.name,
      'org.opencontainers.image.version': pkg.version,
      'org.opencontainers.image.licenses': pkg.license,
    });
    expect(labels['org.opencontainers.image.source']).toMatch(/\S/);
    // The commit it was built from, one of this repository's (HEAD may have moved on since).
    const revision = labels['org.opencontainers.image.revision'] ?? '';
    expect(revision).toMatch(/^[0-9a-f]{40}$/);
    expect(() =>
      execFileSync('git', ['merge-base', '--is-ancestor', revision, 'HEAD'], { stdio: 'ignore' }),
    ).not.toThrow();
  });

  it('(8) has a CycloneDX SBOM beside it listing exactly the production dependencies it holds', async () => {
    const sbom = JSON.parse(readFileSync(SBOM, 'utf8')) as {
      bomFormat: string;
      specVersion: string;
      metadata: { component: { name: string; version: string } };
      components: { name: string; version: string; purl: string }[];
    };
    expect(sbom.bomFormat).toBe('CycloneDX');
    expect(sbom.metadata.component).toMatchObject({ name: pkg.name, version: pkg.version });

    const hidden = JSON.parse(await inImage('cat /app/node_modules/.package-lock.json')) as Lock;
    const inImagePackages = [
      ...new Set(
        Object.entries(hidden.packages).map(([key, entry]) => `${nameOf(key)}@${entry.version}`),
      ),
    ].sort();
    const listed = [...new Set(sbom.components.map((c) => `${c.name}@${c.version}`))].sort();
    expect(listed).toEqual(inImagePackages);
  });
});
