/**
 * A small seeded pseudo-random generator (mulberry32): the same seed gives
 * the same numbers on every run and machine, so a load or a test drawn from
 * it repeats exactly.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mulberry32 } from "./random.ts";
 * const a = mulberry32(42), b = mulberry32(42);
 * assert.equal(a(), b());
 * ```
 *
 * @module
 */

/** Numbers in [0, 1), the same for the same `seed`. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
