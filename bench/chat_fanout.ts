/**
 * Chat fan-out load: `clients` members listen and `senders` more members
 * each SAY `messages` lines of `size` bytes, either as fast as a window of
 * `window` messages not yet delivered to everyone allows, or paced at `rate`
 * messages a second each. Every member (senders too) should get every
 * message of every other sender, in order.
 *
 * The window counts deliveries over all receivers together (a sender may
 * send while `sent - delivered / receivers < window`), as the shared load
 * tool (../shared/bench/loadgen.mjs) does, so that both load a server
 * alike: one slow reader may fall further behind than `window`.
 *
 * Each message carries its sender, sequence number and send time, so a
 * receiver measures latency and spots loss, duplicates and reordering:
 *
 * ```
 * C: SAY @3:41:1520331:xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...
 * S: MSG bench_s3 @3:41:1520331:xxxxxxxxxxxxxxxxxxxxxxxxxx...   (to each other member)
 *        sender ^  ^ seq ^ send time, µs since the tool started
 * ```
 *
 * Not a script: run it through bench/chat_load.ts.
 *
 * @module
 */

import { type LineConn, loginChat, startsWith } from "./chat_conn.ts";
import { pool, reason, type Report, sleep } from "./load_common.ts";
import {
  cpuMeter,
  type CpuUse,
  nowUs,
  round,
  rssKiB,
  Samples,
} from "./stats.ts";

/** The shape of a fan-out run. */
export interface FanoutOptions {
  port: number;
  pid: number;
  clients: number;
  senders: number;
  messages: number;
  size: number;
  /** Messages a second per sender; 0: as fast as the window allows. */
  rate: number;
  window: number;
  concurrency: number;
  /** End (with the missing messages counted lost) after this long without progress. */
  stallSeconds: number;
  tag: string;
}

const AT = 0x40; // '@'
const COLON = 0x3a; // ':'

interface Sender {
  index: number;
  conn?: LineConn;
  sent: number;
  /** Deliveries of this sender's messages, counted over all receivers. */
  delivered: number;
  /** Wakes the sender when the window opens again. */
  wake?: () => void;
}

/** A fan-out run: call {@linkcode FanoutRun.run}, then {@linkcode FanoutRun.report}. */
export class FanoutRun {
  readonly o: FanoutOptions;
  readonly members: number;
  readonly fanout: number;
  readonly senders: Sender[];
  readonly latency = new Samples();
  /** Next expected sequence number, per (member, sender). */
  readonly #next: Int32Array;
  readonly #conns: LineConn[] = [];
  #sent = 0;
  #received = 0;
  #outOfOrder = 0;
  #malformed = 0;
  #errors = 0;
  #lefts = 0;
  #joined = 0;
  #setupError: string | null = null;
  #tSetup = nowUs();
  #tStart = 0;
  #tLast = 0;
  #lastProgress = 0;
  #cpu?: () => CpuUse;
  #cpuResult?: CpuUse;
  #done?: () => void;
  #stopping = false;

  constructor(options: FanoutOptions) {
    this.o = options;
    this.members = options.clients + options.senders;
    this.fanout = this.members - 1;
    this.senders = Array.from(
      { length: options.senders },
      (_, index) => ({ index, sent: 0, delivered: 0 }),
    );
    this.#next = new Int32Array(this.members * options.senders);
  }

  /** Log everyone in, let the JOINED storm pass, then send and wait for every delivery. */
  async run(): Promise<void> {
    if (!(await this.#loginAll())) return;
    await this.#settle();
    this.#tStart = this.#lastProgress = nowUs();
    this.#cpu = cpuMeter(this.o.pid);
    const allDelivered = new Promise<void>((resolve) => this.#done = resolve);
    this.#checkDone();
    const senders = this.senders.map((s) => this.#send(s));
    await Promise.race([allDelivered, this.#stalled()]);
    this.#cpuResult = this.#cpu();
    this.#stopping = true;
    for (const s of this.senders) s.wake?.();
    // A sender blocked in write (the server stopped reading) must not hold the run.
    await Promise.race([Promise.all(senders), sleep(1000)]);
  }

  /** Close every connection. */
  close(): void {
    for (const conn of this.#conns) conn.close();
  }

  async #loginAll(): Promise<boolean> {
    await pool(this.members, this.o.concurrency, async (m) => {
      const isSender = m >= this.o.clients;
      const name = isSender
        ? `b${this.o.tag}s${m - this.o.clients}`
        : `b${this.o.tag}r${m}`;
      try {
        const conn = await loginChat({
          port: this.o.port,
          name,
          onLine: (buf, start, end) => this.#onLine(m, buf, start, end),
        });
        this.#conns.push(conn);
        if (isSender) this.senders[m - this.o.clients].conn = conn;
      } catch (error) {
        this.#setupError ??= `login ${name}: ${reason(error)}`;
      }
    }, () => this.#setupError !== null);
    return this.#setupError === null;
  }

  /** Member k hears of the N-1-k members after it: N(N-1)/2 JOINED lines. */
  get #joinedExpected(): number {
    return (this.members * (this.members - 1)) / 2;
  }

  /**
   * Wait until every JOINED line has arrived. No limit of its own: a server
   * that never sends them all is not measured, and the run's --timeout says
   * so (see #stoppedIn).
   */
  async #settle(): Promise<void> {
    while (this.#joined < this.#joinedExpected) await sleep(20);
  }

  /** What the run was doing when its --timeout stopped it, if before it began measuring. */
  #stoppedIn(): string | null {
    if (this.#tStart) return null;
    const inside = this.#conns.length;
    return inside < this.members
      ? `stopped while logging in (${inside} of ${this.members} members in)`
      : `stopped while waiting for the JOINED lines (${this.#joined} of ${this.#joinedExpected} arrived)`;
  }

  async #send(s: Sender): Promise<void> {
    const { messages, rate, window, size } = this.o;
    const phase = rate ? (s.index * 1e6) / (rate * this.o.senders) : 0;
    for (let seq = 0; seq < messages && !this.#stopping; seq++) {
      if (rate) {
        await sleep(
          (this.#tStart + phase + (seq * 1e6) / rate - nowUs()) / 1000,
        );
      }
      while (
        !this.#stopping && seq - Math.floor(s.delivered / this.fanout) >= window
      ) {
        await new Promise<void>((resolve) => s.wake = resolve);
        s.wake = undefined;
      }
      if (this.#stopping) break;
      const head = `@${s.index}:${seq}:${nowUs()}:`;
      s.sent++;
      this.#sent++;
      this.#lastProgress = nowUs();
      await s.conn!.send(
        `SAY ${head}${"x".repeat(Math.max(0, size - head.length))}`,
      );
    }
  }

  #stalled(): Promise<void> {
    return new Promise((resolve) => {
      const timer = setInterval(() => {
        if (
          this.#stopping ||
          nowUs() - this.#lastProgress > this.o.stallSeconds * 1e6
        ) {
          clearInterval(timer);
          resolve();
        }
      }, 100);
    });
  }

  #onLine(member: number, buf: Uint8Array, start: number, end: number): void {
    if (startsWith(buf, start, end, "MSG ")) {
      return this.#onMessage(member, buf, start, end);
    }
    if (startsWith(buf, start, end, "JOINED ")) this.#joined++;
    else if (startsWith(buf, start, end, "LEFT ")) this.#lefts++;
    else if (startsWith(buf, start, end, "ERROR")) this.#errors++;
  }

  /** `MSG <from> @sender:seq:time:padding` */
  #onMessage(
    member: number,
    buf: Uint8Array,
    start: number,
    end: number,
  ): void {
    const now = nowUs();
    const at = buf.indexOf(AT, start + 4);
    const [sender, p1] = readInt(buf, at + 1, end);
    const [seq, p2] = readInt(buf, p1 + 1, end);
    const [sentAt, p3] = readInt(buf, p2 + 1, end);
    const s = this.senders[sender];
    const wellFormed = at >= 0 && at < end && buf[p1] === COLON &&
      buf[p2] === COLON && buf[p3] === COLON;
    if (!wellFormed || !s) {
      this.#malformed++;
      return;
    }
    this.#received++;
    this.#tLast = this.#lastProgress = now;
    this.latency.add((now - sentAt) / 1000);
    const slot = member * this.o.senders + sender;
    if (seq !== this.#next[slot]) this.#outOfOrder++;
    this.#next[slot] = seq + 1;
    s.delivered++;
    if (
      s.wake && s.sent - Math.floor(s.delivered / this.fanout) < this.o.window
    ) s.wake();
    this.#checkDone();
  }

  #checkDone(): void {
    const total = this.o.senders * this.o.messages;
    if (this.#sent === total && this.#received >= total * this.fanout) {
      this.#done?.();
    }
  }

  /** The result so far (complete once run() has resolved). */
  report(): Report {
    const expected = this.#sent * this.fanout;
    const elapsed = this.#tStart
      ? ((this.#tLast || nowUs()) - this.#tStart) / 1e6
      : null;
    const lost = expected - this.#received;
    const wrong = this.#outOfOrder + this.#malformed + this.#errors +
      this.#lefts;
    const { clients, senders, messages, size, rate, window } = this.o;
    const error = this.#setupError ?? this.#stoppedIn() ??
      (this.#sent < senders * messages
        ? `only ${this.#sent} of ${senders * messages} messages sent`
        : null) ??
      (lost > 0 ? `${lost} deliveries lost` : null) ??
      (wrong > 0
        ? `${wrong} unexpected lines (order, ERROR, LEFT, malformed)`
        : null);
    const rss = rssKiB(this.o.pid);
    return {
      mode: rate ? "paced" : "fanout",
      clients,
      senders,
      messages_per_sender: messages,
      size,
      rate,
      window,
      ...(error ? { error } : {}),
      setup_s: round(((this.#tStart || nowUs()) - this.#tSetup) / 1e6),
      sent: this.#sent,
      expected,
      received: this.#received,
      lost,
      out_of_order: this.#outOfOrder,
      malformed: this.#malformed,
      errors: this.#errors,
      left_events: this.#lefts,
      joined_lines: this.#joined,
      elapsed_s: round(elapsed),
      deliveries_per_s: elapsed ? Math.round(this.#received / elapsed) : null,
      ops: this.#received,
      ...this.latency.summary(),
      server_rss_mb: rss == null ? null : round(rss / 1024, 1),
      ...(this.#cpuResult ?? this.#cpu?.()),
    };
  }
}

/** Parse the decimal digits at buf[i..]; returns [value, index after them]. */
function readInt(buf: Uint8Array, i: number, end: number): [number, number] {
  let value = 0;
  while (i < end && buf[i] >= 0x30 && buf[i] <= 0x39) {
    value = value * 10 + buf[i++] - 0x30;
  }
  return [value, i];
}
