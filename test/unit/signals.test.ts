import { EventEmitter } from 'node:events';
import { describe, expect, it, jest } from '@jest/globals';
import { catchSignals } from '../../src/cli/signals.js';

/** A stand-in for `process` that only emits signals. */
function source() {
  const emitter = new EventEmitter();
  return { on: emitter.on.bind(emitter) as NodeJS.Process['on'], emit: emitter.emit.bind(emitter) };
}

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe('catchSignals', () => {
  it('keeps a stop signal that arrived before anyone could act, and hands it over once', async () => {
    const proc = source();
    const signals = catchSignals(proc);
    proc.emit('SIGTERM');
    proc.emit('SIGINT');
    const onStop = jest.fn();
    signals.onStop(onStop);
    await nextTurn();
    expect(onStop.mock.calls).toEqual([['SIGTERM']]);
    proc.emit('SIGTERM'); // while stopping: nothing more
    expect(onStop).toHaveBeenCalledTimes(1);
  });

  it('hands a later stop signal over at once', () => {
    const proc = source();
    const onStop = jest.fn();
    catchSignals(proc).onStop(onStop);
    proc.emit('SIGINT');
    expect(onStop.mock.calls).toEqual([['SIGINT']]);
  });

  it('folds SIGHUPs from before the reload handler into one reload, then passes each on', async () => {
    const proc = source();
    const signals = catchSignals(proc);
    proc.emit('SIGHUP');
    proc.emit('SIGHUP');
    const onReload = jest.fn();
    signals.onReload(onReload);
    await nextTurn();
    expect(onReload).toHaveBeenCalledTimes(1);
    proc.emit('SIGHUP');
    expect(onReload).toHaveBeenCalledTimes(2);
  });

  it('listens from the start, so no signal meets the default action', () => {
    const proc = source();
    catchSignals(proc);
    for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) expect(proc.emit(signal)).toBe(true);
  });
});
