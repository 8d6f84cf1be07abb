/**
 * Chat load generator for any server that speaks the chat protocol
 * (CONTRACT 3.5) on 127.0.0.1; prints one JSON line with the result and
 * ends by itself (`--timeout`). bench/main.ts runs it; by hand:
 *
 * ```sh
 * deno run -A bench/chat_load.ts --port 5000 --mode fanout --clients 100 --senders 10 --messages 500 --size 100
 * deno run -A bench/chat_load.ts --port 5000 --mode fanout --clients 100 --senders 10 --messages 200 --rate 20
 * deno run -A bench/chat_load.ts --port 5000 --mode storm --clients 2000 --concurrency 100
 * deno run -A bench/chat_load.ts --port 5000 --pid SERVER_PID --mode idle --clients 5000 --hold 5
 * ```
 *
 * Modes: `fanout` (bench/chat_fanout.ts), `storm` (bench/chat_storm.ts),
 * `idle` (bench/chat_idle.ts). Exit 0 when the run completed with nothing
 * lost or failed, 1 otherwise (the JSON says why in `error`), 2 for bad flags.
 *
 * @module
 */

import { parseFlags, runMain, UsageError } from "../lib/cli.ts";
import { FanoutRun } from "./chat_fanout.ts";
import { IdleRun } from "./chat_idle.ts";
import { StormRun } from "./chat_storm.ts";
import {
  emit,
  LOAD_FLAGS,
  requirePort,
  runTag,
  withDeadline,
} from "./load_common.ts";

const COMMAND = {
  name: "bench chat_load",
  summary:
    "Chat load generator: fan-out, connect storm or idle clients; prints one JSON line.",
  flags: {
    ...LOAD_FLAGS,
    mode: {
      kind: "string",
      default: "fanout",
      choices: ["fanout", "storm", "idle"],
      help:
        "fanout (SAY to everyone), storm (LOGIN+QUIT sessions) or idle (log in and stay)",
    },
    clients: {
      kind: "integer",
      default: 100,
      help: "fanout: listening members; storm: sessions; idle: members held",
    },
    senders: {
      kind: "integer",
      default: 10,
      min: 1,
      help: "fanout: members that SAY (they listen too)",
    },
    messages: {
      kind: "integer",
      default: 500,
      help: "fanout: messages per sender",
    },
    size: {
      kind: "integer",
      default: 100,
      min: 1,
      help: "fanout: bytes of text per message",
    },
    rate: {
      kind: "number",
      default: 0,
      help:
        "fanout: messages a second per sender (0: as fast as the window allows)",
    },
    window: {
      kind: "integer",
      default: 50,
      min: 1,
      help: "fanout: messages per sender not yet delivered to everyone",
    },
    concurrency: {
      kind: "integer",
      default: 100,
      min: 1,
      help: "connections opened at a time",
    },
    stall: {
      kind: "number",
      default: 5,
      min: 0.1,
      help:
        "fanout: end after S seconds without progress, the rest counted lost",
    },
    hold: {
      kind: "number",
      default: 5,
      help: "idle: seconds to hold before the second memory reading",
    },
  },
} as const;

async function main(): Promise<number> {
  const f = parseFlags(COMMAND);
  requirePort(f.port);
  const tag = runTag();
  const base = {
    port: f.port,
    pid: f.pid,
    clients: f.clients,
    concurrency: f.concurrency,
    tag,
  };
  let run: FanoutRun | StormRun | IdleRun;
  if (f.mode === "fanout") {
    if (f.clients + f.senders < 2) {
      throw new UsageError("fanout needs --clients + --senders >= 2");
    }
    run = new FanoutRun({
      ...base,
      senders: f.senders,
      messages: f.messages,
      size: f.size,
      rate: f.rate,
      window: f.window,
      stallSeconds: f.stall,
    });
  } else if (f.mode === "storm") {
    run = new StormRun(base);
  } else {
    run = new IdleRun({ ...base, holdSeconds: f.hold });
  }
  const end = await withDeadline(run.run(), f.timeout);
  const code = emit(run.report(), end);
  run.close();
  return code;
}

if (import.meta.main) await runMain(main, COMMAND);
