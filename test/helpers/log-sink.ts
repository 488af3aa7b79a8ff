import { Writable } from 'node:stream';

export interface LogLine {
  level: string;
  time: string;
  event?: string;
  run_id?: string | null;
  msg: string;
  [field: string]: unknown;
}

/** A pino destination that keeps every line, so tests assert on logs instead of eyeballing them. */
export function createLogSink() {
  const raw: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      raw.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      callback();
    },
  });
  const lines = () => raw.map((line) => JSON.parse(line) as LogLine);
  return {
    stream,
    raw,
    lines,
    byEvent: (event: string) => lines().filter((line) => line.event === event),
  };
}
