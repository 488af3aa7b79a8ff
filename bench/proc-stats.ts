import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** One reading of a process from /proc (Linux): CPU seconds so far, resident and peak memory. */
export interface ProcSample {
  at: number;
  cpuSeconds: number;
  rssBytes: number;
  /** VmHWM: the peak resident set size since the process started. */
  hwmBytes: number;
}

function clockTicksPerSecond(): number {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
}

const CLK_TCK = clockTicksPerSecond();

function statusKb(status: string, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  return match?.[1] ? Number(match[1]) * 1024 : 0;
}

/** Reads /proc/<pid>/stat and /proc/<pid>/status; null once the process is gone. */
export function readProc(pid: number): ProcSample | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    // The command name may hold spaces and parentheses: fields count from after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After the name: state is field 3, utime 14 and stime 15 (proc(5)).
    const ticks = Number(fields[11]) + Number(fields[12]);
    const hwmBytes = statusKb(status, 'VmHWM');
    if (hwmBytes === 0) return null; // a zombie has no memory fields left
    return {
      at: Date.now(),
      cpuSeconds: ticks / CLK_TCK,
      rssBytes: statusKb(status, 'VmRSS'),
      hwmBytes,
    };
  } catch {
    return null;
  }
}

/**
 * Samples a child every `intervalMs` until stopped. A child that exits on its own (EXIT_WHEN_DONE)
 * can no longer be read, so the last sample stands for its totals: CPU of at most one interval
 * is missed.
 */
export class ProcSampler {
  readonly samples: ProcSample[] = [];
  readonly #timer: NodeJS.Timeout;

  constructor(
    readonly pid: number,
    intervalMs = 100,
  ) {
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), intervalMs);
  }

  #sample(): void {
    const sample = readProc(this.pid);
    if (sample) this.samples.push(sample);
  }

  get last(): ProcSample | undefined {
    return this.samples.at(-1);
  }

  /** Samples taken between two epoch ms. */
  between(from: number, to: number): ProcSample[] {
    return this.samples.filter((s) => s.at >= from && s.at <= to);
  }

  stop(): void {
    this.#sample();
    clearInterval(this.#timer);
  }
}
