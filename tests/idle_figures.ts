/**
 * The chat idle tool's per-client figures, checked against the memory
 * readings printed beside them. Used by tests/bench_test.ts (our server) and
 * tests/bench_tools_test.ts (a fake server whose memory grows on its own).
 *
 * @module
 */

import assert from "node:assert/strict";

/** A result as the idle tool prints it in its JSON: every figure a string or a number. */
export type IdleResult = Record<string, unknown>;

/**
 * Both per-client figures are the server's growth since the reading before
 * the logins, divided by the logins: `kib_per_client` up to the reading right
 * after them, `kib_per_client_held` up to the one at the end of the hold.
 * The MB readings are rounded to 0.1 MB, so a product may be off by 103 KiB.
 */
export function assertPerClientGrowth(r: IdleResult, logins: number): void {
  const before = Number(r.rss_before_mb) * 1024;
  for (
    const [perClient, mb] of [
      [r.kib_per_client, r.rss_after_mb],
      [r.kib_per_client_held, r.rss_held_mb],
    ]
  ) {
    const grown = Number(mb) * 1024 - before;
    assert.ok(
      Math.abs(Number(perClient) * logins - grown) <= 103,
      `${perClient} KiB x ${logins} against ${grown} KiB`,
    );
  }
}
