import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { drawFault, faultLabel, Faults } from './faults.js';
import { closeServer, listenOn } from './http-server.js';
import { mulberry32, type Random } from './random.js';
import { answerFor, jsonReply, writeReply, type Answer } from './responses.js';
import { runAt } from './run-view.js';
import { finishOffsetMs, generateScenario, RunTimeline, Scenario } from './scenario.js';

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
  /**
   * Runs the account made before the simulator started, all finished: they make the list long
   * (as a real account's list is) and answer on both endpoints.
   */
  history?: number;
}

// The vendor's routes; Django answers other paths with 404.
const RUN_PATH = /^\/api\/dataframer\/runs\/([^/]+)\/$/;
const LIST_PATH = '/api/dataframer/runs/';
/** The simulator's own route for creating runs while it runs (not the vendor's). */
const ADMIN_RUNS_PATH = '/simulator/runs';
/** What the list endpoint leaves out of a run: it has no runtime_params or generated_files. */
const GET_ONLY_FIELDS = ['runtime_params', 'generated_files'];
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
  /** How long before the start each history run was created (ms); other runs are not here. */
  readonly #ages = new Map<string, number>();
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
    this.#addHistory(opts.history ?? 0, opts.seed ?? 1);
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
    const age = this.#ages.get(runId.toLowerCase()) ?? 0;
    return run ? this.#startedAt - age + finishOffsetMs(run) : null;
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

  /** Adds timelines whose `startMs` counts from now rather than from the start. */
  addRunsFromNow(runs: RunTimeline[]): void {
    const elapsed = Math.max(0, this.#now() - this.#startedAt);
    this.addRuns(
      runs.map((run) => ({ ...RunTimeline.parse(run), startMs: run.startMs + elapsed })),
    );
  }

  #addHistory(count: number, seed: number): void {
    const { runs } = generateScenario({ seed: seed + 1_000_003, count, startSpreadMs: 0 });
    runs.forEach((run, i) => {
      this.#runs.set(run.runId.toLowerCase(), run);
      // Finished some minutes before the start, one a minute apart, the oldest first.
      this.#ages.set(run.runId.toLowerCase(), finishOffsetMs(run) + (count - i) * 60_000);
    });
  }

  /** The run's body at `at`, or null before it exists (also for runs it does not know). */
  #bodyAt(runId: string, at: number): Record<string, unknown> | null {
    const run = this.#runs.get(runId.toLowerCase());
    if (!run) return null;
    const age = this.#ages.get(runId.toLowerCase()) ?? 0;
    return runAt(run, at - this.#startedAt + age, this.#startedAt - age);
  }

  /** `GET /api/dataframer/runs/`: every run of the account that exists, list fields only. */
  #listAt(at: number): Record<string, unknown>[] {
    const items: Record<string, unknown>[] = [];
    for (const runId of this.#runs.keys()) {
      const body = this.#bodyAt(runId, at);
      if (body === null) continue;
      for (const field of GET_ONLY_FIELDS) delete body[field];
      items.push(body);
    }
    return items;
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const at = this.#now();
    const path = new URL(req.url ?? '/', 'http://simulator').pathname;
    if (path === LIST_PATH || path === ADMIN_RUNS_PATH)
      return void this.#handleAccount(req, res, path);
    const match = RUN_PATH.exec(path);
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
    const refused = this.#refusal(req);
    if (refused) return this.#send(req, res, reply(refused));
    const body = this.#bodyAt(runId, at);
    if (body === null) return this.#send(req, res, reply(NOT_FOUND));

    // Decided and logged on arrival, so the log reads in arrival order even for slow answers.
    const draw = drawFault(this.#random, this.#faults);
    const answer = answerFor(body, draw, this.#faults.retryAfterSeconds ?? 1);
    reply(answer, faultLabel(draw), String(body['status']));
    this.#sendAfter(req, res, answer, draw.delayMs);
  }

  /** The list endpoint, and the simulator's own route that creates runs while it runs. */
  async #handleAccount(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const at = this.#now();
    const reply = (answer: Answer, fault: string | null = null) => {
      this.#requests.push({
        at,
        runId: null,
        status: answer.kind === 'reply' ? answer.status : 0,
        fault,
        runStatus: null,
      });
      return answer;
    };
    const method = path === LIST_PATH ? 'GET' : 'POST';
    if (req.method !== method) {
      const detail = `Method "${req.method}" not allowed.`;
      return this.#send(req, res, reply(jsonReply(405, { detail }, { allow: method })));
    }
    const refused = this.#refusal(req);
    if (refused) return this.#send(req, res, reply(refused));
    if (path === ADMIN_RUNS_PATH) return this.#send(req, res, reply(await this.#createRuns(req)));
    if (this.#faults.listUnavailable) {
      const detail = 'Service temporarily unavailable.';
      return this.#send(req, res, reply(jsonReply(503, { detail }), 'list_unavailable'));
    }
    const draw = drawFault(this.#random, this.#faults);
    const answer = answerFor(this.#listAt(at), draw, this.#faults.retryAfterSeconds ?? 1);
    reply(answer, faultLabel(draw));
    this.#sendAfter(req, res, answer, draw.delayMs);
  }

  /** `POST /simulator/runs` with `{"runs": [timeline…]}`, each `startMs` counted from now. */
  async #createRuns(req: IncomingMessage): Promise<Answer> {
    const chunks: Buffer[] = [];
    for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
    try {
      const { runs } = Scenario.parse(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      this.addRunsFromNow(runs);
      return jsonReply(201, { created: runs.map((run) => run.runId) });
    } catch (error) {
      return jsonReply(400, { detail: error instanceof Error ? error.message : String(error) });
    }
  }

  /** The 401 of Django REST framework for a missing or wrong key; null when the key is right. */
  #refusal(req: IncomingMessage): Answer | null {
    const authorization = req.headers.authorization;
    if (authorization !== undefined && timingSafeEqual(digest(authorization), this.#keyDigest))
      return null;
    const detail =
      authorization === undefined
        ? 'Authentication credentials were not provided.'
        : 'Invalid token.';
    return jsonReply(401, { detail }, { 'www-authenticate': 'Bearer' });
  }

  #sendAfter(req: IncomingMessage, res: ServerResponse, answer: Answer, delayMs: number): void {
    if (delayMs === 0) return this.#send(req, res, answer);
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      this.#send(req, res, answer);
    }, delayMs);
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
