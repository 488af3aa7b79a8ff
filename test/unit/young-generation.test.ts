import { describe, expect, it } from '@jest/globals';
import { cappedArgv, semiSpaceChosen } from '../../src/runtime/young-generation.js';

describe('young generation cap of the entry point', () => {
  it('leaves a size the operator chose, by node flag or NODE_OPTIONS', () => {
    expect(semiSpaceChosen([], undefined)).toBe(false);
    expect(semiSpaceChosen(['--enable-source-maps'], '--max-old-space-size=512')).toBe(false);
    expect(semiSpaceChosen(['--max-semi-space-size=16'], undefined)).toBe(true);
    expect(semiSpaceChosen([], '--trace-gc  --max-semi-space-size=0')).toBe(true);
    expect(semiSpaceChosen([], '--max_semi_space_size=16')).toBe(true);
  });

  it('re-executes the same script and arguments with the cap before the other node flags', () => {
    expect(
      cappedArgv(
        '/usr/bin/node',
        ['--enable-source-maps'],
        ['/usr/bin/node', '/app/dist/main.js', 'deliveries', 'list'],
      ),
    ).toEqual([
      '/usr/bin/node',
      '--max-semi-space-size=8',
      '--enable-source-maps',
      '/app/dist/main.js',
      'deliveries',
      'list',
    ]);
  });
});
