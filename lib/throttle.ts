/**
 * How fast one client may send: a token bucket. A client may send `burst`
 * bytes at once, then `rate` bytes per second; past that, the server reads
 * it more slowly (its own socket buffers fill up, and TCP makes its writes
 * wait). Nothing is refused or lost.
 *
 * Why the chat server needs it: every line a client says is written to
 * every reader. A client that pipes `yes` into `nc` says megabytes a
 * second, more than a reader in another program can read, and a reader that
 * falls more than its queue limit behind is dropped (lib/outbox.ts). Without
 * a limit on the sender, one such client gets everyone else dropped.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Throttle } from "./throttle.ts";
 * let now = 0; // a clock the example moves by hand, in ms
 * const throttle = new Throttle(1000, 100, () => now); // 1000 B/s, 100 at once
 * assert.equal(throttle.take(100), 0); // the burst: no wait
 * assert.equal(throttle.take(10), 10); // 10 more: 10 ms at 1000 B/s
 * now += 10; // the client waited
 * assert.equal(throttle.take(5), 5);
 * now += 60_000; // a long pause earns the burst back, and no more
 * assert.equal(throttle.take(100), 0);
 * assert.equal(throttle.take(10), 10);
 * ```
 *
 * @module
 */

/** A clock in milliseconds (tests pass their own). */
export type Clock = () => number;

const monotonic: Clock = () => performance.now();

/** A token bucket of bytes: see the module notes. */
export class Throttle {
  readonly #rate: number; // bytes per millisecond
  readonly #burst: number;
  readonly #now: Clock;
  #allowance: number; // bytes that may be sent now (negative: owed)
  #since: number; // when #allowance was worked out

  /** `rate` bytes per second, up to `burst` at once. */
  constructor(rate: number, burst: number, now: Clock = monotonic) {
    this.#rate = rate / 1000;
    this.#burst = burst;
    this.#now = now;
    this.#allowance = burst;
    this.#since = now();
  }

  /**
   * Count `bytes` as sent, and return how many milliseconds the caller
   * should wait before reading more from this client: 0 while it is within
   * its allowance (the usual case), otherwise the time until the allowance
   * is back to zero.
   */
  take(bytes: number): number {
    const now = this.#now();
    const earned = (now - this.#since) * this.#rate;
    this.#since = now;
    this.#allowance = Math.min(this.#burst, this.#allowance + earned) - bytes;
    return this.#allowance >= 0 ? 0 : -this.#allowance / this.#rate;
  }
}
