import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { drawFault, faultLabel, Faults } from './faults.js';
import { closeServer, listenOn } from './http-server.js';
import { mulberry32, type Random } from './random.js';
import { answerFor, jsonReply, writeReply, type Answer } from './responses.js';
import { runAt } from './run-view.js';
import { finishOffsetMs, RunTimeline, Scenario } from './scenario.js';

export type { Faults } from './faults.js';

export interface RequestRecord {
  /** Epoch ms (simulator clock) the request arrived. */
  at: number;
  runId: string | null;
  /** 0 when the connection was reset without an answer. */
  status: number;
  /** `slow`, `reset`, `server_error`, `rate_limit`, `malformed`, `schema_break` or `slow+<kind>`. */
  fault: string | null;
  /** The run status the served body stands for (also when malformed or broken); null without one. */
  runStatus: string | null;
}

export interface SimulatorOptions {
  scenario: Scenario;
  apiKey: string;
  faults?: Faults;
  /** Seeds the fault draws, so a faulty session replays request by request. */
  seed?: number;
  now?: () => number;
}

// The one route of the vendor spec; Django answers other paths with 404.
const RUN_PATH = /^\/api\/dataframer\/runs\/([^/]+)\/$/;
const NOT_FOUND = jsonReply(404, { detail: 'Not found.' });

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/**
 * A local stand-in for `GET /api/dataframer/runs/{run_id}/`: runs follow their timelines on
 * the simulator's clock, and chosen faults hit authorized requests for existing runs, so the
 * watcher's retry, schema and back-off paths can be watched end to end on one machine.
 */
export class Simulator {
  readonly #server: Server;
  readonly #runs = new Map<string, RunTimeline>();
  readonly #requests: RequestRecord[] = [];
  readonly #keyDigest: Buffer;
  readonly #random: Random;
  readonly #now: () => number;
  readonly #timers = new Set<NodeJS.Timeout>();
  #faults: Faults;
  #startedAt: number;

  constructor(opts: SimulatorOptions) {
    this.#now = opts.now ?? Date.now;
    this.#keyDigest = digest(`Bearer ${opts.apiKey}`);
    this.#random = mulberry32(opts.seed ?? 1);
    this.#faults = Faults.parse(opts.faults ?? {});
    this.#startedAt = this.#now();
    this.addRuns(Scenario.parse(opts.scenario).runs);
    this.#server = createServer((req, res) => this.#handle(req, res));
  }

  /** Epoch ms the timelines count from: construction time until `listen` resets it. */
  get startedAt(): number {
    return this.#startedAt;
  }

  get requests(): readonly RequestRecord[] {
    return this.#requests;
  }

  /** Resets the clock so that every timeline starts now, then serves. */
  async listen(port = 0, host = '127.0.0.1'): Promise<string> {
    this.#startedAt = this.#now();
    return listenOn(this.#server, port, host);
  }

  async close(): Promise<void> {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    await closeServer(this.#server);
  }

  /** Epoch ms the run reaches its terminal status; null for a run the simulator does not know. */
  finishedAt(runId: string): number | null {
    const run = this.#runs.get(runId.toLowerCase());
    return run ? this.#startedAt + finishOffsetMs(run) : null;
  }

  setFaults(faults: Faults): void {
    this.#faults = Faults.parse(faults);
  }

  /** Adds timelines; their offsets count from `startedAt` like the others. */
  addRuns(runs: RunTimeline[]): void {
    const parsed = runs.map((run) => RunTimeline.parse(run));
    for (const run of parsed) {
      if (this.#runs.has(run.runId.toLowerCase()))
        throw new Error(`run ${run.runId} is already simulated`);
    }
    for (const run of parsed) this.#runs.set(run.runId.toLowerCase(), run);
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const at = this.#now();
    const match = RUN_PATH.exec(new URL(req.url ?? '/', 'http://simulator').pathname);
    const runId = match?.[1] !== undefined ? safeDecode(match[1]) : null;
    const reply = (
      answer: Answer,
      fault: string | null = null,
      runStatus: string | null = null,
    ) => {
      this.#requests.push({
        at,
        runId,
        status: answer.kind === 'reply' ? answer.status : 0,
        fault,
        runStatus: answer.kind === 'reply' && answer.servesRun ? runStatus : null,
      });
      return answer;
    };

    if (runId === null) return this.#send(req, res, reply(NOT_FOUND));
    if (req.method !== 'GET') {
      const detail = `Method "${req.method}" not allowed.`;
      return this.#send(req, res, reply(jsonReply(405, { detail }, { allow: 'GET' })));
    }
    const authorization = req.headers.authorization;
    if (authorization === undefined || !timingSafeEqual(digest(authorization), this.#keyDigest)) {
      // Django REST framework's wording for the two cases.
      const detail =
        authorization === undefined
          ? 'Authentication credentials were not provided.'
          : 'Invalid token.';
      const answer = jsonReply(401, { detail }, { 'www-authenticate': 'Bearer' });
      return this.#send(req, res, reply(answer));
    }
    const run = this.#runs.get(runId.toLowerCase());
    const body = run ? runAt(run, at - this.#startedAt, this.#startedAt) : null;
    if (body === null) return this.#send(req, res, reply(NOT_FOUND));

    // Decided and logged on arrival, so the log reads in arrival order even for slow answers.
    const draw = drawFault(this.#random, this.#faults);
    const answer = answerFor(body, draw, this.#faults.retryAfterSeconds ?? 1);
    reply(answer, faultLabel(draw), String(body['status']));
    if (draw.delayMs === 0) return this.#send(req, res, answer);
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      this.#send(req, res, answer);
    }, draw.delayMs);
    this.#timers.add(timer);
  }

  #send(req: IncomingMessage, res: ServerResponse, answer: Answer): void {
    if (answer.kind === 'reset') req.socket.destroy();
    else writeReply(res, answer);
  }
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
