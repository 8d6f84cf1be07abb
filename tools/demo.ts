/**
 * Runs every exercise end to end with nobody at the keyboard and prints what
 * each side shows: servers on free ports of 127.0.0.1, clients scripted
 * (`>` marks what is typed into them; the calculator client shows what it
 * reads after its prompt itself). Exits 0 when every part worked.
 *
 * Run: deno task demo
 * Directly: deno run --allow-run --allow-read tools/demo.ts
 *
 * @module
 */

import { parseFlags, printLine, printWhileOpen, runMain } from "../lib/cli.ts";
import { onShutdown } from "../lib/net.ts";
import { Actor } from "./actor.ts";

const COMMAND = {
  name: "demo",
  summary:
    "Runs every exercise end to end with scripted clients and shows both sides.",
  flags: {},
} as const;

/** One part of the demo: a heading and the steps that play it. */
interface Part {
  title: string;
  play: () => Promise<void>;
}

const PARTS: Part[] = [
  { title: "Part 1, Q1: UDP hello (12000/udp)", play: udpHello },
  { title: "Part 1, Q3: UDP date/time (12001/udp)", play: udpTime },
  { title: "Part 2, Q4: TCP knock-knock (12002/tcp)", play: tcpKnock },
  { title: "Part 2, Q6: TCP calculator (12003/tcp)", play: calculator },
  { title: "Part 3, Q8: chat room (5000/tcp)", play: chat },
];

async function main(): Promise<number> {
  parseFlags(COMMAND);
  // Ctrl+C reaches every script too; a signal to this process alone must
  // not leave a server running.
  onShutdown(async (signal) => {
    printWhileOpen()(
      `\nStopped (${signal}): stopping the scripts still running.`,
    );
    await Actor.stopAll();
    Deno.exit(signal === "SIGINT" ? 130 : 143);
  });
  const failed: string[] = [];
  // Between parts no script runs: a stdout that is closed (`| head`) or
  // refused (a full disk) may end the demo here (lib/cli.ts runMain).
  for (const part of PARTS) {
    printLine(`\n== ${part.title} ==\n`);
    try {
      await part.play();
    } catch (error) {
      printLine(`\nFAILED: ${(error as Error).message}`);
      failed.push(part.title);
    }
  }
  printLine("");
  if (failed.length > 0) {
    printLine(`${failed.length} of ${PARTS.length} parts failed:`);
    for (const title of failed) printLine(`  ${title}`);
    return 1;
  }
  printLine(`All ${PARTS.length} parts ran as expected.`);
  return 0;
}

/** Start a server on a free port of 127.0.0.1; its port, from its first line. */
async function startServer(script: string, tag = "server") {
  const server = new Actor({
    tag,
    script,
    args: ["--host", "127.0.0.1", "--port", "0"],
  });
  try {
    const first = await server.waitFor(/listening on/);
    const port = /listening on \S+:(\d+)/.exec(first)?.[1] ?? "";
    return Object.assign(server, { port });
  } catch (error) {
    await server[Symbol.asyncDispose]();
    throw error;
  }
}

/** Stop a server as Ctrl+C would, and check it said goodbye with exit 0. */
async function stopServer(server: Actor): Promise<void> {
  expectExit(server, await server.stop());
}

function expectExit(actor: Actor, code: number): void {
  if (code !== 0) throw new Error(`${actor.tag} exited with code ${code}`);
}

async function udpHello(): Promise<void> {
  await using server = await startServer("udp/hello_server.ts");
  await using client = new Actor({
    tag: "client",
    script: "udp/hello_client.ts",
    args: ["--port", server.port],
  });
  await client.waitFor(/Ok/);
  expectExit(client, await client.exited());
  await server.waitFor(/UDP joke/);
  await stopServer(server);
}

async function udpTime(): Promise<void> {
  await using server = await startServer("udp/time_server.ts");
  await using client = new Actor({
    tag: "client",
    script: "udp/time_client.ts",
    args: ["--port", server.port, "--count", "3"]
      .concat(["--min-delay", "0.1", "--max-delay", "0.3"]),
  });
  for (let i = 0; i < 3; i++) {
    await client.waitFor(/SEND_(DATE|TIME).*(\d{4}-\d\d-\d\d|\d\d:\d\d:\d\d)/);
  }
  expectExit(client, await client.exited());
  await stopServer(server);
}

async function tcpKnock(): Promise<void> {
  await using server = await startServer("tcp/knock_server.ts");
  await using client = new Actor({
    tag: "client",
    script: "tcp/knock_client.ts",
    args: ["--port", server.port],
  });
  await client.waitFor(/Who's there\?/);
  expectExit(client, await client.exited());
  await server.waitFor(/Knock knock/);
  await stopServer(server);
}

/** A session with a good line, a malformed one (never sent), a refused one. */
async function calculator(): Promise<void> {
  await using server = await startServer("tcp/calc_server.ts");
  await using client = new Actor({
    tag: "client",
    script: "tcp/calc_client.ts",
    args: ["--port", server.port, "--name", "Ada"],
    stdin: true,
    showTyped: false, // it shows each line after its prompt itself
  });
  await client.waitFor(/Hello Ada/);
  const session: [string, RegExp][] = [
    ["12 + 13", /\b25\b/],
    ["4.5 / -6", /-0\.75/],
    ["12(10", /Not sent/], // the client's own check: nothing is sent
    ["1 / 0", /ERROR division by zero/],
    ["q", /Session ended/],
  ];
  for (const [line, answer] of session) {
    await client.type(line);
    await client.waitFor(answer);
  }
  expectExit(client, await client.exited());
  await server.waitFor(/Session ended/);
  await stopServer(server);
}

/** Two people in the room: they join, talk, and one leaves. */
async function chat(): Promise<void> {
  await using server = await startServer("chat/server.ts");
  const join = async (name: string) => {
    const person = new Actor({
      tag: name,
      script: "chat/client.ts",
      args: ["--port", server.port, "--name", name],
      stdin: true,
    });
    try {
      await person.waitFor(new RegExp(`\\b${name}\\b`)); // its welcome
      return person;
    } catch (error) {
      await person[Symbol.asyncDispose]();
      throw error;
    }
  };
  await using alice = await join("alice");
  await using bob = await join("bob");
  await alice.waitFor(/bob has joined the chat\./);
  await bob.type("/who");
  await bob.waitFor(/alice, bob/);
  await alice.type("hi bob");
  await bob.waitFor(/alice: hi bob/);
  await bob.type("hello alice, bye");
  await alice.waitFor(/bob: hello alice, bye/);
  await bob.type("quit");
  expectExit(bob, await bob.exited());
  await alice.waitFor(/bob has left the chat\./);
  await alice.endInput();
  expectExit(alice, await alice.exited());
  await server.waitFor(/alice/);
  await stopServer(server);
}

if (import.meta.main) await runMain(main, COMMAND);
