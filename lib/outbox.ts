/**
 * A connection's outgoing queue, for servers that send one line to many
 * readers (the chat room).
 *
 * Why it exists: `await writeAll(conn, line)` for each reader in turn lets one
 * reader that stops reading hold up everyone after it (its socket buffer fills
 * and the write never finishes), and a promise chain per message costs more
 * than the message. So {@linkcode Outbox.push} never waits: it appends the
 * bytes of a line for this reader alone (a reply, a PRIVATE) and counts them;
 * broadcasts go through {@linkcode Outbox.pushShared} (below). Writing starts
 * at the next turn of the event loop (one `setImmediate` for every outbox; a
 * `setTimeout` of 0 ms would wait about two milliseconds), once every read
 * that completed with this one has been handled, so all the lines they
 * produced for a reader leave together: a write costs far more than the bytes
 * in it (a third of it is the runtime's work around the system call), so
 * fewer, bigger writes are what makes a busy room fast. One writer per
 * connection then drains the queue, writing everything queued as one buffer;
 * what is queued while a write is in flight waits for the next turn's batch. A
 * turn starts at most {@linkcode WRITES_PER_TURN} writes, those of the
 * outboxes that have waited longest: a thousand started at once would leave
 * some readers far behind. A reader that lets more than `maxBytes` pile up is
 * reported to the owner, who drops it; the others never notice.
 *
 * Lines for many readers (a broadcast, {@linkcode Outbox.pushShared}) are
 * stored once in a {@linkcode SharedLog}: a reader's queue is then mostly one
 * stretch of that log, written straight from it, with no copy per reader
 * (a short stretch left waiting behind a write is copied, so that it does
 * not keep a whole segment of the log alive).
 * Notices (someone joined or left, {@linkcode Outbox.pushNotice}) are stored
 * there too, and may wait {@linkcode NOTICE_DELAY_MS} for company, so a
 * crowd logging in at once costs a few writes per reader instead of one
 * write per login per reader.
 *
 * An idle outbox holds no promise and no buffer: thousands of quiet
 * connections cost little.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Outbox } from "./outbox.ts";
 * import { encodeLine } from "./lines.ts";
 * const written: string[] = [];
 * const sink = {
 *   write(p: Uint8Array) {
 *     written.push(new TextDecoder().decode(p));
 *     return Promise.resolve(p.length);
 *   },
 * };
 * const owner = { onOverflow() {}, onWriteError() {} };
 * const outbox = new Outbox(sink, 1024, owner);
 * outbox.push(encodeLine("JOINED bob"));
 * outbox.push(encodeLine("MSG bob hi"));
 * await outbox.flushed();
 * assert(written.join("|") === "JOINED bob\nMSG bob hi\n");
 * ```
 *
 * @module
 */

import { clearImmediate, setImmediate } from "node:timers";
import { isConnectionLost } from "./errors.ts";
import { type ByteSink } from "./lines.ts";

/** Longest a notice ({@linkcode Outbox.pushNotice}) waits to be written, in ms. */
export const NOTICE_DELAY_MS = 10;

/** Who an {@linkcode Outbox} reports trouble to (the connection's owner). */
export interface OutboxOwner {
  /**
   * More than `maxBytes` are queued: the reader is not keeping up. Called
   * once, inside the `push` that went past the limit; the outbox then accepts
   * nothing more, and the owner closes the connection.
   */
  onOverflow(queuedBytes: number): void;
  /** A write failed because the connection is gone. Called once. */
  onWriteError(error: Error): void;
}

/**
 * Most writes started in one turn of the event loop. A broadcast makes a
 * thousand outboxes ready at once, but starting a thousand writes together
 * is slower than starting them a few dozen at a time: the runtime completes
 * only so many operations per turn (likely Tokio's cooperative budget of
 * 128), and in our measurements the writes left over then waited up to
 * 250 ms behind the writes of later turns, so some readers got every message
 * of a busy room a quarter of a second late. Fan-out to 1000 readers: all
 * at once, 0.5x of the Node reference's rate and 3.7x its p99 latency; 16,
 * 32, 64 or 100 per turn, at par with it (bench/NOTES.md; git log of this
 * file).
 */
export const WRITES_PER_TURN = 32;

/** Bytes of one segment of a {@linkcode SharedLog}. */
const SEGMENT_BYTES = 64 * 1024;

/**
 * A queued run of shared lines shorter than 1/4 of its segment is copied
 * (see `#endRun`), so a reader's queue keeps at most 4 times its own bytes
 * of the log alive.
 */
const VIEW_MIN_SHARE = 4;

/** Where a line sits in a {@linkcode SharedLog}: bytes `start..end` of a segment. */
export interface SharedLine {
  readonly segment: Uint8Array;
  readonly start: number;
  readonly end: number;
}

/**
 * A broadcast (MSG, JOINED, LEFT) is the same line for every reader, and a
 * busy room sends every reader thousands of them. So each such line is
 * stored once, appended to a shared log, and an outbox only remembers
 * which stretch of the log it still has to write: consecutive lines for
 * one reader are one contiguous stretch, written straight from the log with
 * no copy. A thousand lines queued for a thousand readers cost a thousand
 * lines of memory, not a million queue entries, and no reader's write
 * copies them into a buffer of its own. (Only a short stretch that has to
 * wait is copied: see `Outbox.#endRun`.)
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SharedLog } from "./outbox.ts";
 * import { encodeLine } from "./lines.ts";
 * const log = new SharedLog();
 * const first = log.append(encodeLine("JOINED ann"));
 * const second = log.append(encodeLine("JOINED bob"));
 * assert(first.segment === second.segment && first.end === second.start);
 * ```
 */
export class SharedLog {
  #segment = new Uint8Array(SEGMENT_BYTES);
  #used = 0;

  /**
   * Store `line` once; the result is what {@linkcode Outbox.pushShared} and
   * {@linkcode Outbox.pushNotice} take.
   */
  append(line: Uint8Array): SharedLine {
    if (this.#used + line.length > this.#segment.length) {
      // Older segments live on while some outbox still has to write them.
      this.#segment = new Uint8Array(
        Math.max(SEGMENT_BYTES, line.length),
      );
      this.#used = 0;
    }
    this.#segment.set(line, this.#used);
    const stored = {
      segment: this.#segment,
      start: this.#used,
      end: this.#used + line.length,
    };
    this.#used = stored.end;
    return stored;
  }
}

/**
 * Bytes waiting to be written to one connection, drained by one writer.
 *
 * @example
 * ```ts ignore
 * import { Outbox } from "./outbox.ts";
 * import { encodeLine } from "./lines.ts";
 * const conn = await Deno.connect({ port: 5000 });
 * const outbox = new Outbox(conn, 1 << 20, {
 *   onOverflow: () => conn.close(),
 *   onWriteError: () => conn.close(),
 * });
 * outbox.push(encodeLine("WHO"));
 * ```
 */
export class Outbox {
  /** Outboxes with urgent bytes queued and no write running. */
  static #ready = new Set<Outbox>();
  static #readyTimer: ReturnType<typeof setImmediate> | undefined;
  /** Outboxes with only notices queued, written when the notice timer fires. */
  static #later = new Set<Outbox>();
  static #laterTimer: ReturnType<typeof setTimeout> | undefined;

  /**
   * Start the writes of the outboxes that have waited longest, at most
   * {@linkcode WRITES_PER_TURN}; the rest wait for the next turn.
   */
  static #flushReady(): void {
    Outbox.#readyTimer = undefined;
    let started = 0;
    for (const outbox of Outbox.#ready) { // a Set iterates in insertion order
      if (started++ === WRITES_PER_TURN) break;
      Outbox.#ready.delete(outbox);
      outbox.#writeQueued();
    }
    if (Outbox.#ready.size > 0) {
      Outbox.#readyTimer = setImmediate(Outbox.#flushReady);
    }
  }

  /** The notice delay is over: what every waiting outbox holds may not wait. */
  static #flushLater(): void {
    const batch = Outbox.#later;
    Outbox.#later = new Set();
    Outbox.#laterTimer = undefined;
    for (const outbox of batch) {
      outbox.#urgent = true;
      outbox.#schedule();
    }
  }

  readonly #sink: ByteSink;
  readonly #maxBytes: number;
  readonly #owner: OutboxOwner;
  #chunks: Uint8Array[] = [];
  // Notices queued after the chunks: bytes runStart..runEnd of runSegment.
  #runSegment: Uint8Array | undefined;
  #runStart = 0;
  #runEnd = 0;
  #writing: Uint8Array | undefined; // the bytes of the write in flight
  // Made once: a write in flight then holds no closures of its own, which
  // matters when thousands of writes are in flight at once.
  readonly #onWritten = (n: number) => this.#written(n);
  readonly #onFailed = (error: unknown) => this.#failed(error);
  #queued = 0; // bytes pushed and not yet written, the batch in flight included
  #urgent = false; // something queued may not wait for the notice timer
  #state: "idle" | "later" | "ready" | "writing" | "closed" = "idle";
  #waiters: (() => void)[] | undefined;

  constructor(sink: ByteSink, maxBytes: number, owner: OutboxOwner) {
    this.#sink = sink;
    this.#maxBytes = maxBytes;
    this.#owner = owner;
  }

  /** Bytes pushed and not yet written. */
  get queuedBytes(): number {
    return this.#queued;
  }

  /**
   * Bytes of memory the queue keeps alive: every buffer its chunks and the
   * write in flight are views of, each counted once (a segment of the log,
   * shared with other readers, counts whole).
   */
  get heldBytes(): number {
    const buffers = new Set<ArrayBufferLike>();
    for (const chunk of this.#chunks) buffers.add(chunk.buffer);
    if (this.#runSegment) buffers.add(this.#runSegment.buffer);
    if (this.#writing) buffers.add(this.#writing.buffer);
    let bytes = 0;
    for (const buffer of buffers) bytes += buffer.byteLength;
    return bytes;
  }

  /**
   * Queue `bytes` (kept, not copied: do not change them afterwards), to be
   * written as soon as the code running now has finished. Returns false when
   * the outbox is closed or has just overflowed.
   */
  push(bytes: Uint8Array): boolean {
    if (this.#state === "closed") return false;
    this.#endRun();
    this.#chunks.push(bytes);
    if (!this.#count(bytes.length)) return false;
    this.#makeUrgent();
    return true;
  }

  /**
   * Queue a line stored in a {@linkcode SharedLog} (a broadcast): written
   * like {@linkcode Outbox.push}, but lines that follow each other in the log
   * are written from it as one stretch, not copied.
   */
  pushShared(line: SharedLine): boolean {
    if (!this.#extendRun(line)) return false;
    this.#makeUrgent();
    return true;
  }

  /**
   * Queue a notice (someone joined or left) that may wait up to
   * {@linkcode NOTICE_DELAY_MS}, so that when many people join at once each
   * reader gets their notices in a few writes rather than one write each.
   * Order is kept: a later {@linkcode Outbox.push} sends it first.
   */
  pushNotice(notice: SharedLine): boolean {
    if (!this.#extendRun(notice)) return false;
    if (this.#state === "idle") this.#waitForNoticeTimer();
    return true;
  }

  /** Add `line` to the run of shared lines queued last (or start a new run). */
  #extendRun(line: SharedLine): boolean {
    if (this.#state === "closed") return false;
    const { segment, start, end } = line;
    if (segment !== this.#runSegment || start !== this.#runEnd) {
      this.#endRun();
      this.#runSegment = segment;
      this.#runStart = start;
    }
    this.#runEnd = end;
    return this.#count(end - start);
  }

  /** What is queued now may not wait for the notice timer. */
  #makeUrgent(): void {
    this.#urgent = true;
    if (this.#state === "later") Outbox.#forget(this);
    if (this.#state === "idle" || this.#state === "later") this.#schedule();
  }

  /** Resolves once everything pushed so far is written (or the outbox closed). */
  flushed(): Promise<void> {
    if (this.#state === "idle" || this.#state === "closed") {
      return Promise.resolve();
    }
    return new Promise((resolve) => (this.#waiters ??= []).push(resolve));
  }

  /** Accept nothing more and forget what is queued (the connection is going). */
  close(): void {
    if (this.#state === "closed") return;
    if (this.#state === "later") Outbox.#forget(this);
    if (this.#state === "ready") Outbox.#unready(this);
    this.#state = "closed";
    this.#chunks = [];
    this.#runSegment = undefined;
    this.#queued = 0;
    this.#wakeWaiters();
  }

  /**
   * Queue the run of shared lines as a chunk: a view of the log, no copy,
   * unless the run is short. A view keeps its whole segment alive, and a
   * reader that stops reading while the room talks mostly past it (its own
   * lines, private ones) would queue a short run per segment: a dozen bytes
   * counted against its limit for each 64 KiB held. A copy holds what it
   * counts, so what a reader keeps alive stays within
   * {@linkcode VIEW_MIN_SHARE} times its queue, plus the segments of its
   * open run and of its write in flight.
   */
  #endRun(): void {
    const run = this.#takeRun();
    if (run === undefined) return;
    const share = run.length / run.buffer.byteLength;
    this.#chunks.push(share >= 1 / VIEW_MIN_SHARE ? run : run.slice());
  }

  /** The run of shared lines queued last, as a view of the log, and forget it. */
  #takeRun(): Uint8Array | undefined {
    const segment = this.#runSegment;
    if (segment === undefined) return undefined;
    this.#runSegment = undefined;
    return segment.subarray(this.#runStart, this.#runEnd);
  }

  /** Count `n` more bytes queued; past the limit, close and tell the owner. */
  #count(n: number): boolean {
    if (this.#state === "closed") return false;
    this.#queued += n;
    if (this.#queued <= this.#maxBytes) return true;
    const queued = this.#queued;
    this.close();
    this.#owner.onOverflow(queued);
    return false;
  }

  #waitForNoticeTimer(): void {
    this.#state = "later";
    Outbox.#later.add(this);
    Outbox.#laterTimer ??= setTimeout(Outbox.#flushLater, NOTICE_DELAY_MS);
  }

  /** Take an outbox off the notice list (and stop the timer if it was the last). */
  static #forget(outbox: Outbox): void {
    Outbox.#later.delete(outbox);
    if (Outbox.#later.size === 0) {
      clearTimeout(Outbox.#laterTimer);
      Outbox.#laterTimer = undefined;
    }
  }

  /** Take a closed outbox off the ready list (and stop the timer if it was the last). */
  static #unready(outbox: Outbox): void {
    Outbox.#ready.delete(outbox);
    if (Outbox.#ready.size === 0) {
      clearImmediate(Outbox.#readyTimer);
      Outbox.#readyTimer = undefined;
    }
  }

  /**
   * Write everything queued as one buffer; called with nothing in flight.
   * Notices alone wait for the notice timer.
   */
  #writeQueued(): void {
    if (this.#state !== "ready") return;
    if (this.#chunks.length === 0 && this.#runSegment === undefined) {
      this.#state = "idle";
      return this.#wakeWaiters();
    }
    if (!this.#urgent && this.#waiters === undefined) {
      return this.#waitForNoticeTimer();
    }
    const run = this.#takeRun(); // written now: no need to copy it first
    if (run) this.#chunks.push(run);
    this.#writing = concat(this.#chunks);
    this.#chunks = [];
    this.#urgent = false;
    this.#state = "writing";
    this.#sink.write(this.#writing).then(this.#onWritten, this.#onFailed);
  }

  #written(n: number): void {
    if (this.#state === "closed") return;
    this.#queued -= n;
    const rest = this.#writing!.subarray(n);
    if (rest.length > 0) {
      this.#writing = rest;
      this.#sink.write(rest).then(this.#onWritten, this.#onFailed);
      return;
    }
    this.#writing = undefined;
    if (this.#chunks.length === 0 && this.#runSegment === undefined) {
      this.#state = "ready";
      return this.#writeQueued(); // idle again (waiters woken)
    }
    this.#schedule(); // what came meanwhile joins the next batch
  }

  /**
   * Write at a later turn of the event loop (`setImmediate`), not a microtask: the
   * reads that completed together all run first, so each reader gets one
   * write for all the lines they produced, and one timer serves every
   * outbox. Outboxes take their turns in the order they became ready.
   */
  #schedule(): void {
    this.#state = "ready";
    Outbox.#ready.add(this);
    Outbox.#readyTimer ??= setImmediate(Outbox.#flushReady);
  }

  #failed(error: unknown): void {
    if (!isConnectionLost(error)) throw error;
    if (this.#state === "closed") return;
    this.close();
    this.#owner.onWriteError(error as Error);
  }

  #wakeWaiters(): void {
    const waiters = this.#waiters;
    this.#waiters = undefined;
    waiters?.forEach((wake) => wake());
  }
}

/** The chunks as one buffer (a single chunk is not copied). */
function concat(chunks: Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  let size = 0;
  for (const chunk of chunks) size += chunk.length;
  const out = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}
