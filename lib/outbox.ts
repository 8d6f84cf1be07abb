/**
 * A connection's outgoing queue, for servers that send one line to many
 * readers (the chat room).
 *
 * Why it exists: `await writeAll(conn, line)` for each reader in turn lets one
 * reader that stops reading hold up everyone after it (its socket buffer
 * fills and the write never finishes), and a promise chain per message costs
 * more than the message. So {@linkcode Outbox.push} never waits: it appends
 * the bytes (often one `Uint8Array` shared by every reader of a broadcast)
 * and counts them. Writing starts once the code that is running now has
 * finished (a microtask later), so the lines queued meanwhile, for instance
 * by a burst of logins, leave together. One writer per connection then
 * drains the queue, writing everything queued as one buffer (one system call
 * for a batch of lines). A reader that lets more than `maxBytes` pile up is
 * reported to the owner, who drops it; the others never notice.
 *
 * An idle outbox holds no promise and no buffer: thousands of quiet
 * connections cost little.
 *
 * @example
 * ```ts
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
 * console.assert(written.join("|") === "JOINED bob\nMSG bob hi\n");
 * ```
 *
 * @module
 */

import { type ByteSink, isConnectionLost } from "./lines.ts";

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
  static #ready: Outbox[] = [];
  /** Outboxes with only notices queued, written when the notice timer fires. */
  static #later = new Set<Outbox>();
  static #laterTimer: ReturnType<typeof setTimeout> | undefined;

  /** Start the writes of every outbox that became ready since the last call. */
  static #flushReady(): void {
    const batch = Outbox.#ready;
    Outbox.#ready = [];
    for (const outbox of batch) outbox.#writeQueued();
  }

  /** The notice delay is over: write what every waiting outbox holds. */
  static #flushLater(): void {
    const batch = Outbox.#later;
    Outbox.#later = new Set();
    Outbox.#laterTimer = undefined;
    for (const outbox of batch) {
      outbox.#state = "ready";
      outbox.#writeQueued(true);
    }
  }

  readonly #sink: ByteSink;
  readonly #maxBytes: number;
  readonly #owner: OutboxOwner;
  #chunks: Uint8Array[] = [];
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
   * Queue `bytes` (kept, not copied: do not change them afterwards), to be
   * written as soon as the code running now has finished. Returns false when
   * the outbox is closed or has just overflowed.
   */
  push(bytes: Uint8Array): boolean {
    if (!this.#append(bytes)) return false;
    this.#urgent = true;
    if (this.#state === "later") Outbox.#forget(this);
    if (this.#state === "idle" || this.#state === "later") {
      this.#state = "ready";
      if (Outbox.#ready.push(this) === 1) queueMicrotask(Outbox.#flushReady);
    }
    return true;
  }

  /**
   * Queue a notice (someone joined or left) that may wait up to
   * {@linkcode NOTICE_DELAY_MS}, so that when many people join at once each
   * reader gets their notices in a few writes rather than one write each.
   * Order is kept: a later {@linkcode Outbox.push} sends it first.
   */
  pushNotice(bytes: Uint8Array): boolean {
    if (!this.#append(bytes)) return false;
    if (this.#state === "idle") this.#waitForNoticeTimer();
    return true;
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
    this.#state = "closed";
    this.#chunks = [];
    this.#queued = 0;
    this.#wakeWaiters();
  }

  #append(bytes: Uint8Array): boolean {
    if (this.#state === "closed") return false;
    this.#chunks.push(bytes);
    this.#queued += bytes.length;
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

  /** Take an outbox off the notice list; no timer is left for nobody. */
  static #forget(outbox: Outbox): void {
    Outbox.#later.delete(outbox);
    if (Outbox.#later.size === 0) {
      clearTimeout(Outbox.#laterTimer);
      Outbox.#laterTimer = undefined;
    }
  }

  /**
   * Write everything queued as one buffer; called with nothing in flight.
   * Notices alone wait for the notice timer, unless `due` (it has fired).
   */
  #writeQueued(due = false): void {
    if (this.#state !== "ready") return;
    if (this.#chunks.length === 0) {
      this.#state = "idle";
      return this.#wakeWaiters();
    }
    if (!due && !this.#urgent && this.#waiters === undefined) {
      return this.#waitForNoticeTimer();
    }
    const batch = concat(this.#chunks);
    this.#chunks = [];
    this.#urgent = false;
    this.#state = "writing";
    this.#write(batch);
  }

  #write(bytes: Uint8Array): void {
    this.#sink.write(bytes).then(
      (n) => this.#written(bytes, n),
      (error) => this.#failed(error),
    );
  }

  #written(bytes: Uint8Array, n: number): void {
    if (this.#state === "closed") return;
    this.#queued -= n;
    if (n < bytes.length) return this.#write(bytes.subarray(n));
    this.#state = "ready";
    this.#writeQueued();
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

/** The chunks as one buffer (the chunk itself when there is only one). */
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
