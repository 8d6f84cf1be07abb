/**
 * Actor.stopAll() in a process of its own (the stop is for good): start a
 * knock-knock server, stop every script, then try to start another. Prints
 * what happened, one line each:
 *
 *     server exited 0
 *     late: stopped: no new script starts
 *
 * Run by tests/demo_test.ts.
 *
 * @module
 */

import { Actor } from "../tools/actor.ts";

const quiet = { print: () => {}, script: "tcp/knock_server.ts" };
const server = new Actor({ ...quiet, tag: "server", args: ["--port", "0"] });
await server.waitFor(/listening on/);
await Actor.stopAll();
console.log(`server exited ${await server.exited()}`);
try {
  await using late = new Actor({
    ...quiet,
    tag: "late",
    args: ["--port", "0"],
  });
  await late.waitFor(/listening on/);
  console.log("late: started");
} catch (error) {
  console.log(`late: ${(error as Error).message}`);
}
