/**
 * Chat idle load: `clients` members log in (`concurrency` at a time) and
 * stay, saying nothing; the server's resident memory (VmRSS of process
 * `pid`) before the first connect and once everyone is in and the server
 * has gone quiet, divided by the members, is its memory per idle client.
 * It is read once more after `hold` seconds.
 *
 * Logging in N members makes the server send N(N-1)/2 `JOINED` lines
 * (member k hears of everyone after it); the run waits for all of them and
 * for the server's CPU to be idle before it reads the memory. At the end the
 * connections are simply closed (a polite QUIT from each would cost the
 * server another N(N-1)/2 `LEFT` lines, which measures nothing new).
 *
 * Not a script: run it through bench/chat_load.ts.
 *
 * @module
 */

import { type LineConn, loginChat, startsWith } from "./chat_conn.ts";
import { pool, reason, type Report, sleep, tally } from "./load_common.ts";
import {
  cpuSeconds,
  nowUs,
  openFilesLimit,
  round,
  rssKiB,
  Samples,
} from "./stats.ts";

/** The shape of an idle run. */
export interface IdleOptions {
  port: number;
  pid: number;
  clients: number;
  concurrency: number;
  holdSeconds: number;
  tag: string;
}

/** File descriptors a process needs beyond one per client. */
const SPARE_FILES = 64;

/** An idle run: call {@linkcode IdleRun.run}, then {@linkcode IdleRun.report}. */
export class IdleRun {
  readonly o: IdleOptions;
  readonly latency = new Samples();
  readonly failures: Record<string, number> = {};
  readonly #conns: LineConn[] = [];
  #joined = 0;
  #dropped = 0;
  #closing = false;
  #rssBefore: number | null = null;
  #rssAfter: number | null = null;
  #rssHeld: number | null = null;
  #t0 = nowUs();
  #tIn = 0;
  #tSettled = 0;
  #setupError: string | null = null;
  #finished = false;

  constructor(options: IdleOptions) {
    this.o = options;
  }

  /** Log everyone in, wait for quiet, read the server's memory, hold, read again. */
  async run(): Promise<void> {
    if (!this.#checkLimits()) return;
    this.#rssBefore = rssKiB(this.o.pid);
    await pool(this.o.clients, this.o.concurrency, (i) => this.#join(i));
    this.#tIn = nowUs();
    if (this.#conns.length === 0) return;
    await this.#settle();
    this.#tSettled = nowUs();
    this.#rssAfter = rssKiB(this.o.pid);
    await sleep(this.o.holdSeconds * 1000);
    this.#rssHeld = rssKiB(this.o.pid);
    this.#finished = true;
  }

  /** Close every connection. */
  close(): void {
    this.#closing = true;
    for (const conn of this.#conns) conn.close();
  }

  /** The server's memory must be readable; both processes need a file descriptor per client. */
  #checkLimits(): boolean {
    const need = this.o.clients + SPARE_FILES;
    if (!this.o.pid) {
      this.#setupError = "idle needs --pid (the server's memory is the result)";
    } else if (rssKiB(this.o.pid) === null) {
      this.#setupError =
        `the memory of process ${this.o.pid} cannot be read (is --pid the server's?)`;
    }
    for (
      const [who, pid] of [["this load tool", "self"], [
        "the server",
        this.o.pid,
      ]] as const
    ) {
      const limit = pid ? openFilesLimit(pid) : null;
      if (limit != null && limit < need) {
        this.#setupError ??= `${who} may open ${limit} files, ${need} needed ` +
          "(start it with a higher 'ulimit -n', up to 'ulimit -Hn')";
      }
    }
    return this.#setupError === null;
  }

  async #join(i: number): Promise<void> {
    const t = nowUs();
    try {
      const conn = await loginChat({
        port: this.o.port,
        name: `b${this.o.tag}i${i}`,
        timeoutMs: 30_000,
        onLine: (buf, start, end) => {
          if (startsWith(buf, start, end, "JOINED ")) this.#joined++;
        },
      });
      this.latency.add((nowUs() - t) / 1000);
      this.#conns.push(conn);
      conn.closed.then(() => this.#closing || this.#dropped++);
    } catch (error) {
      tally(this.failures, reason(error));
    }
  }

  /** Member k hears of the N-1-k members after it: N(N-1)/2 JOINED lines. */
  get #joinedExpected(): number {
    const n = this.#conns.length;
    return (n * (n - 1)) / 2;
  }

  /**
   * Wait for every JOINED line, then for two 250 ms spans in a row with at
   * most one clock tick (10 ms) of server CPU each: until then the
   * server's memory is still moving. No limit of its own: a server that
   * never gets there is not measured, and the run's --timeout says so (see
   * #stoppedIn).
   */
  async #settle(): Promise<void> {
    while (this.#joined < this.#joinedExpected) await sleep(50);
    let quiet = 0;
    let before = cpuSeconds(this.o.pid);
    while (quiet < 2) {
      await sleep(250);
      const now = cpuSeconds(this.o.pid);
      // not "<= 0.01": one tick can read as 0.07 - 0.06 = 0.010000000000000009
      quiet = now !== null && before !== null && now - before < 0.015
        ? quiet + 1
        : 0;
      before = now;
    }
  }

  /** What the run was doing when its --timeout stopped it, if it had not finished. */
  #stoppedIn(): string | null {
    if (!this.#tIn) {
      return `stopped while logging in (${this.#conns.length} of ${this.o.clients} members in)`;
    }
    if (this.#joined < this.#joinedExpected) {
      return `stopped while waiting for the JOINED lines (${this.#joined} of ${this.#joinedExpected} arrived)`;
    }
    if (!this.#tSettled) {
      return "stopped while waiting for the server to go quiet";
    }
    return this.#finished ? null : "stopped while holding";
  }

  /** The result so far (complete once run() has resolved). */
  report(): Report {
    const logins = this.#conns.length;
    const failed = this.o.clients - logins;
    const perClient = (rss: number | null) =>
      rss != null && this.#rssBefore != null && logins
        ? round((rss - this.#rssBefore) / logins, 2)
        : null;
    const mb = (
      kib: number | null,
    ) => (kib == null ? null : round(kib / 1024, 1));
    const error = this.#setupError ??
      (this.#tIn && failed
        ? `${failed} of ${this.o.clients} logins failed`
        : null) ??
      (this.#dropped
        ? `${this.#dropped} idle clients dropped by the server`
        : null) ??
      this.#stoppedIn();
    const loginSeconds = this.#tIn ? (this.#tIn - this.#t0) / 1e6 : null;
    return {
      mode: "idle",
      clients: this.o.clients,
      concurrency: this.o.concurrency,
      hold_s: this.o.holdSeconds,
      ...(error ? { error } : {}),
      logins,
      failures: this.#tIn ? failed : null,
      failure_reasons: this.failures,
      dropped: this.#dropped,
      joined_lines: this.#joined,
      login_s: round(loginSeconds),
      logins_per_s: loginSeconds ? Math.round(logins / loginSeconds) : null,
      settle_s: this.#tSettled
        ? round((this.#tSettled - this.#tIn) / 1e6)
        : null,
      rss_before_mb: mb(this.#rssBefore),
      rss_after_mb: mb(this.#rssAfter),
      rss_held_mb: mb(this.#rssHeld),
      kib_per_client: perClient(this.#rssAfter),
      kib_per_client_held: perClient(this.#rssHeld),
      server_rss_mb: mb(this.#rssAfter),
      ...this.latency.summary(),
    };
  }
}
