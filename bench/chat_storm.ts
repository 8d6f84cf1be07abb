/**
 * Chat connect storm: `clients` short sessions, `concurrency` at a time,
 * each one a whole visit to the room:
 *
 * ```
 * C: (connect)
 * C: LOGIN bench_c17
 * S: WELCOME bench_c17        (JOINED/LEFT of the others may come between)
 * C: QUIT
 * S: BYE                      (then the server closes)
 * ```
 *
 * Not a script: run it through bench/chat_load.ts.
 *
 * @module
 */

import { type LineConn, lineText, loginChat } from "./chat_conn.ts";
import { pool, reason, type Report, tally } from "./load_common.ts";
import {
  cpuMeter,
  type CpuUse,
  nowUs,
  round,
  rssKiB,
  Samples,
} from "./stats.ts";

/** The shape of a storm. */
export interface StormOptions {
  port: number;
  pid: number;
  clients: number;
  concurrency: number;
  tag: string;
}

/** Give up on one session after this long. */
const SESSION_TIMEOUT_MS = 10_000;

/** A storm: call {@linkcode StormRun.run}, then {@linkcode StormRun.report}. */
export class StormRun {
  readonly o: StormOptions;
  readonly latency = new Samples();
  readonly failures: Record<string, number> = {};
  readonly #open = new Set<LineConn>();
  #logins = 0;
  #failed = 0;
  #t0 = 0;
  #t1 = 0;
  #cpu?: () => CpuUse;
  #cpuResult?: CpuUse;

  constructor(options: StormOptions) {
    this.o = options;
  }

  /** Run every session; resolves when all have ended. */
  async run(): Promise<void> {
    this.#t0 = nowUs();
    this.#cpu = cpuMeter(this.o.pid);
    await pool(this.o.clients, this.o.concurrency, (i) => this.#session(i));
    this.#t1 = nowUs();
    this.#cpuResult = this.#cpu();
  }

  /** Close whatever is still open (after a timeout). */
  close(): void {
    for (const conn of this.#open) conn.close();
  }

  async #session(i: number): Promise<void> {
    const t = nowUs();
    let conn: LineConn | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const bye = new Promise<void>((resolve, reject) => {
        timer = setTimeout(
          () => reject(new Error("no BYE in time")),
          SESSION_TIMEOUT_MS,
        );
        loginChat({
          port: this.o.port,
          name: `b${this.o.tag}c${i}`,
          timeoutMs: SESSION_TIMEOUT_MS,
          onLine: (buf, start, end) => {
            if (lineText(buf, start, end) === "BYE") resolve();
          },
        }).then((c) => {
          conn = c;
          this.#open.add(c);
          c.closed.then(() => reject(new Error("closed before BYE")));
          return c.send("QUIT");
        }).catch(reject);
      });
      await bye;
      this.#logins++;
      this.latency.add((nowUs() - t) / 1000);
    } catch (error) {
      this.#failed++;
      tally(this.failures, reason(error));
    } finally {
      clearTimeout(timer);
      conn?.close();
      if (conn) this.#open.delete(conn);
    }
  }

  /** The result so far (complete once run() has resolved). */
  report(): Report {
    const elapsed = ((this.#t1 || nowUs()) - this.#t0) / 1e6;
    const rss = rssKiB(this.o.pid);
    return {
      mode: "storm",
      clients: this.o.clients,
      concurrency: this.o.concurrency,
      ...(this.#failed ? { error: `${this.#failed} sessions failed` } : {}),
      logins: this.#logins,
      failures: this.#failed,
      failure_reasons: this.failures,
      elapsed_s: round(elapsed),
      logins_per_s: elapsed ? Math.round(this.#logins / elapsed) : null,
      ops: this.#logins,
      ...this.latency.summary(),
      server_rss_mb: rss == null ? null : round(rss / 1024, 1),
      ...(this.#cpuResult ?? this.#cpu?.()),
    };
  }
}
