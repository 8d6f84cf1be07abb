/**
 * Calculator load generator for any server that speaks CONTRACT 3.4 on
 * 127.0.0.1: `--clients` sessions at once, each sending `--requests`
 * expressions with `--pipeline` of them in flight (1: strictly one at a
 * time), every answer checked against bench/calc_cases.ts. Prints one JSON
 * line and ends by itself (`--timeout`). bench/main.ts runs it; by hand:
 *
 * ```sh
 * deno run -A bench/calc_load.ts --port 12003 --clients 50 --requests 1000 --pipeline 1
 * deno run -A bench/calc_load.ts --port 12003 --clients 50 --requests 1000 --pipeline 8
 * ```
 *
 * One session on the wire (pipeline 2: a new request goes out after each answer):
 *
 * ```
 * C: bench_k3q0            S: Hello bench_k3q0
 * C: 4173 + -2210
 * C: 12--4                 S: 1963
 * C: -.7 + -3.5            S: 16
 *                          S: -4.2
 * C: q                     S: Session ended   (and the server closes)
 * ```
 *
 * Exit 0 when every answer was right and every session ended, 1 otherwise.
 *
 * @module
 */

import { parseFlags, runMain } from "../lib/cli.ts";
import { LineReader, writeAll } from "../lib/lines.ts";
import { type CalcCase, calcCases } from "./calc_cases.ts";
import {
  closeQuietly,
  emit,
  LOAD_FLAGS,
  LOOPBACK,
  pool,
  reason,
  type Report,
  requirePort,
  runTag,
  tally,
  withDeadline,
} from "./load_common.ts";
import {
  cpuMeter,
  type CpuUse,
  nowUs,
  round,
  rssKiB,
  Samples,
} from "./stats.ts";

const COMMAND = {
  name: "bench calc_load",
  summary:
    "Calculator load generator: checked sessions, sequential or pipelined; prints one JSON line.",
  flags: {
    ...LOAD_FLAGS,
    clients: { kind: "integer", default: 50, min: 1, help: "sessions at once" },
    requests: {
      kind: "integer",
      default: 1000,
      help: "expressions per session",
    },
    pipeline: {
      kind: "integer",
      default: 1,
      min: 1,
      help: "expressions in flight per session",
    },
    concurrency: {
      kind: "integer",
      default: 64,
      min: 1,
      help: "sessions opened at a time",
    },
  },
} as const;

type Options = ReturnType<typeof parseFlags<typeof COMMAND>> & { tag: string };

const encoder = new TextEncoder();

/** An open session, greeted and ready to send. */
interface Session {
  seed: number;
  conn: Deno.TcpConn;
  lines: LineReader;
}

/** A whole load run: open every session, then run them all at once. */
class CalcRun {
  readonly o: Options;
  readonly latency = new Samples();
  readonly failures: Record<string, number> = {};
  readonly wrongExamples: { request: string; want: string; got: string }[] = [];
  readonly #conns = new Set<Deno.TcpConn>();
  #answers = 0;
  #wrong = 0;
  #ended = 0;
  #tStart = 0;
  #tEnd = 0;
  #cpu?: () => CpuUse;
  #cpuResult?: CpuUse;

  constructor(options: Options) {
    this.o = options;
  }

  async run(): Promise<void> {
    const sessions: Session[] = [];
    await pool(this.o.clients, this.o.concurrency, async (i) => {
      try {
        sessions.push(await this.#open(i));
      } catch (error) {
        tally(this.failures, `open: ${reason(error)}`);
      }
    });
    this.#tStart = nowUs();
    this.#cpu = cpuMeter(this.o.pid);
    await Promise.all(sessions.map((s) => this.#session(s)));
    this.#tEnd = nowUs();
    this.#cpuResult = this.#cpu();
  }

  close(): void {
    for (const conn of this.#conns) closeQuietly(conn);
  }

  /** Connect and say the name: `C: bench_k3q0` / `S: Hello bench_k3q0`. */
  async #open(seed: number): Promise<Session> {
    const conn = await Deno.connect({ hostname: LOOPBACK, port: this.o.port });
    this.#conns.add(conn);
    conn.setNoDelay(true);
    const name = `bench_${this.o.tag}q${seed}`;
    const lines = new LineReader(conn);
    await writeAll(conn, encoder.encode(`${name}\n`));
    const hello = await lines.readLine();
    if (hello !== `Hello ${name}`) {
      throw new Error(`greeting was ${JSON.stringify(hello)}`);
    }
    return { seed, conn, lines };
  }

  /** Send every request, keeping `pipeline` in flight; then `q`. */
  async #session({ seed, conn, lines }: Session): Promise<void> {
    const cases = calcCases(seed, this.o.requests);
    const sentAt: number[] = [];
    let sent = 0;
    const send = (n: number) => {
      const batch = cases.slice(sent, sent + n);
      for (let i = 0; i < batch.length; i++) sentAt.push(nowUs());
      sent += batch.length;
      return writeAll(
        conn,
        encoder.encode(batch.map((c) => c.request + "\n").join("")),
      );
    };
    try {
      await send(this.o.pipeline);
      for (let k = 0; k < cases.length; k++) {
        const line = await lines.readLine();
        if (line === null) throw new Error(`closed after ${k} answers`);
        this.#check(cases[k], line, sentAt[k]);
        if (sent < cases.length) await send(1);
      }
      await writeAll(conn, encoder.encode("q\n"));
      const bye = await lines.readLine();
      if (bye !== "Session ended") {
        throw new Error(`answer to q was ${JSON.stringify(bye)}`);
      }
      this.#ended++;
    } catch (error) {
      tally(this.failures, `session: ${reason(error)}`);
    } finally {
      closeQuietly(conn);
      this.#conns.delete(conn);
    }
  }

  #check(expected: CalcCase, got: string, sentAt: number): void {
    const now = nowUs();
    this.latency.add((now - sentAt) / 1000);
    this.#answers++;
    this.#tEnd = now;
    if (got === expected.answer) return;
    this.#wrong++;
    if (this.wrongExamples.length < 5) {
      this.wrongExamples.push({
        request: expected.request,
        want: expected.answer,
        got: got.slice(0, 80),
      });
    }
  }

  report(): Report {
    const { clients, requests, pipeline } = this.o;
    const elapsed = this.#tStart
      ? ((this.#tEnd || nowUs()) - this.#tStart) / 1e6
      : null;
    const failed = Object.values(this.failures).reduce((a, b) => a + b, 0);
    const expected = clients * requests;
    const error = failed
      ? `${failed} sessions failed`
      : this.#wrong
      ? `${this.#wrong} wrong answers`
      : this.#answers < expected
      ? `${this.#answers} of ${expected} answers`
      : null;
    const rss = rssKiB(this.o.pid);
    return {
      mode: pipeline > 1 ? "calc-pipelined" : "calc-sequential",
      clients,
      requests_per_client: requests,
      pipeline,
      ...(error ? { error } : {}),
      expected_answers: expected,
      answers: this.#answers,
      wrong: this.#wrong,
      wrong_examples: this.wrongExamples,
      sessions_ended: this.#ended,
      failures: failed,
      failure_reasons: this.failures,
      elapsed_s: round(elapsed),
      answers_per_s: elapsed ? Math.round(this.#answers / elapsed) : null,
      ops: this.#answers,
      ...this.latency.summary(),
      server_rss_mb: rss == null ? null : round(rss / 1024, 1),
      ...(this.#cpuResult ?? this.#cpu?.()),
    };
  }
}

async function main(): Promise<number> {
  const flags = parseFlags(COMMAND);
  requirePort(flags.port);
  const run = new CalcRun({ ...flags, tag: runTag() });
  const end = await withDeadline(run.run(), flags.timeout);
  const code = emit(run.report(), end);
  run.close();
  return code;
}

if (import.meta.main) await runMain(main, COMMAND);
