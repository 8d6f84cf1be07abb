/**
 * A server whose stdout nobody reads for a while: `deno task chat-server |
 * less` left on its first page, a terminal paused with Ctrl+S. Once the
 * pipe is full, the server's log waits, and the server serves on; when the
 * reader is back, the lines come, in order. Stopped while nobody reads, it
 * still ends. (The log itself: lib/batched_log.ts, batched_log_test.ts.)
 */

import assert from "node:assert/strict";
import { type StartedServer, startServer, within } from "./support.ts";
import { TestClient } from "./tcp_support.ts";

/** About 300 KB of log lines: several times what a pipe holds (64 KiB). */
const SAYS = 300;
const TEXT = "x".repeat(1000);

/**
 * Two members, ann and bob; ann says {@linkcode SAYS} long lines, each one
 * logged, and bob must get every one. Returns the two, still logged in.
 */
async function talkALot(server: StartedServer) {
  const target = { hostname: server.host, port: server.port };
  const ann = await TestClient.connect(target);
  const bob = await TestClient.connect(target);
  assert.equal(await ann.ask("LOGIN ann"), "WELCOME ann");
  assert.equal(await bob.ask("LOGIN bob"), "WELCOME bob");
  assert.equal(await ann.answer(), "JOINED bob");
  const says = Array.from({ length: SAYS }, (_, i) => `SAY ${i} ${TEXT}\n`);
  await ann.send(says.join("")); // the server's stdout, unread, fills up
  for (let i = 0; i < SAYS; i++) {
    assert.equal(await bob.answer(), `MSG ann ${i} ${TEXT}`);
  }
  return { ann, bob, target };
}

Deno.test("a chat server whose stdout nobody reads serves on; the lines come once it is read", async () => {
  // startServer reads the first line (the port), then nothing until told.
  await using server = await startServer("chat/server.ts");
  const { ann, bob, target } = await talkALot(server);
  await using _ann = ann;
  await using _bob = bob;
  await using cat = await TestClient.connect(target);
  assert.equal(await cat.ask("LOGIN cat"), "WELCOME cat");
  assert.equal(await cat.ask("WHO"), "USERS ann bob cat");

  // The reader is back: every line, in order, none lost.
  await server.waitFor("logged in as cat");
  const said = server.seen.filter((line) => line.startsWith("ann: "));
  assert.deepEqual(
    said,
    Array.from({ length: SAYS }, (_, i) => `ann: ${i} ${TEXT}`),
  );
  assert.ok(!server.seen.some((line) => line.includes("lost")));
});

Deno.test("a chat server whose stdout nobody reads still stops, exit 0", async () => {
  await using server = await startServer("chat/server.ts");
  const { ann, bob } = await talkALot(server);
  await using _ann = ann;
  await using _bob = bob;
  server.child.kill("SIGTERM"); // and still nobody reads its stdout
  // Its clients get a second to go, its log one more to be read.
  const status = await within(server.child.status, 10_000, "it hangs");
  assert.equal(status.code, 0);
});
