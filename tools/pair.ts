/**
 * Runs one exercise's server and client together, as two terminals would:
 * the server in the background on a free port of 127.0.0.1, then the client
 * against it (your keyboard goes to the client), then the server is stopped.
 * The server's lines are tagged `[server]`. Exits with the client's code
 * (1 if the client succeeded but the server would not stop: see
 * {@linkcode STOP_GRACE_MS}).
 *
 * Run: deno task udp-time            (or udp-hello, tcp-knock)
 *      deno task udp-time --count 3  (extra flags go to the client)
 *      deno task udp-time --help     (the client's flags, less --host and --port)
 * Directly: deno run --allow-run --allow-read tools/pair.ts udp/time_server.ts udp/time_client.ts
 *
 * @module
 */

import { pathToFileURL } from "node:url";
import {
  type CommandSpec,
  FatalError,
  parseFlags,
  printLine,
  printWhileOpen,
  runMain,
  UsageError,
} from "../lib/cli.ts";
import { LineReader, streamSource } from "../lib/lines.ts";
import { onShutdown } from "../lib/net.ts";

/** The permissions every exercise needs (UDP ones also need unstable net). */
const RUN_FLAGS = ["run", "--allow-net", "--unstable-net"];

/**
 * How long the server may take to stop after SIGTERM before it is killed:
 * one changed so that it ignores the signal, or hangs on its way out, must
 * not keep the pair running after its client has gone.
 */
const STOP_GRACE_MS = 5_000;

const USAGE_HINT =
  "usage: deno run --allow-run --allow-read tools/pair.ts SERVER.ts CLIENT.ts [client flags]";

async function main(): Promise<number> {
  const [serverScript, clientScript, ...clientArgs] = Deno.args;
  if (!serverScript?.endsWith(".ts") || !clientScript?.endsWith(".ts")) {
    throw new UsageError(USAGE_HINT);
  }
  // The client's flags are checked before its server starts: --help and a
  // mistake then answer under the pair's own name, with no server lines.
  const command = await pairCommand(clientScript);
  try {
    const taken = clientArgs.find((arg) => /^--(host|port)(=|$)/.test(arg));
    if (taken) {
      const flag = taken.split("=")[0];
      throw new UsageError(
        `${flag} is chosen here (the server runs on a free port of 127.0.0.1); to reach another server, run its client task alone`,
      );
    }
    parseFlags(command, clientArgs); // --help: prints the usage, ends here
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    throw new UsageError(
      `${error.message}\nRun 'deno task ${command.name} --help' for usage.`,
    );
  }
  const server = new Deno.Command(Deno.execPath(), {
    args: [...RUN_FLAGS, serverScript, "--host", "127.0.0.1", "--port", "0"],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // Ctrl+C reaches the whole process group, and the client and the server
  // stop by themselves. A signal sent to this process alone (`kill PID`) is
  // passed on to the one in front: the client while it runs, else the
  // server (before the client starts, and while it is stopped after it).
  let inFront = server;
  const removeHandlers = onShutdown(() => signal(inFront, "SIGTERM"));
  try {
    const serverLines = new LineReader(streamSource(server.stdout));
    const first = await serverLines.readLine();
    const port = first && /listening on \S+:(\d+)/.exec(first)?.[1];
    if (!port) {
      const why = await new Response(server.stderr).text();
      throw new FatalError(
        `The server did not start: ${why.trim() || first || "no output"}`,
      );
    }
    printLine(`[server] ${first}`); // stdout refused: say so, stop the server
    const serverDone = Promise.all([
      // Read to the end even once stdout fails (the client, which shares
      // it, says so): a server whose pipe is full would stop answering.
      tag(serverLines, "[server] ", printWhileOpen()),
      tag(
        new LineReader(streamSource(server.stderr)),
        "[server] ",
        console.error,
      ),
    ]);
    const client = new Deno.Command(Deno.execPath(), {
      args: [...RUN_FLAGS, clientScript, "--port", port, ...clientArgs],
      stdin: "inherit",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
    inFront = client;
    const { code } = await client.status;
    inFront = server;
    const killed = await stop(server);
    await serverDone;
    if (!killed) return code;
    const grace = `${STOP_GRACE_MS / 1000} s`;
    console.error(
      `The server did not stop within ${grace} of SIGTERM, so it was killed (a server must stop cleanly on SIGTERM).`,
    );
    return code || 1;
  } finally {
    removeHandlers();
    signal(server, "SIGKILL"); // still running only if something failed above
    await server.status;
  }
}

/**
 * Stop `server` as Ctrl+C would (SIGTERM), and kill it (SIGKILL) if it is
 * still running {@linkcode STOP_GRACE_MS} later. True if it had to be killed.
 */
async function stop(server: Deno.ChildProcess): Promise<boolean> {
  signal(server, "SIGTERM");
  const timer = setTimeout(() => signal(server, "SIGKILL"), STOP_GRACE_MS);
  try {
    return (await server.status).signal === "SIGKILL";
  } finally {
    clearTimeout(timer);
  }
}

/** Send `name` to `child`, unless it has exited already. */
function signal(child: Deno.ChildProcess, name: Deno.Signal): void {
  try {
    child.kill(name);
  } catch {
    // already exited: Ctrl+C reached it too, say
  }
}

/**
 * The pair as a command: the client's flags under the pair's task name,
 * without the two flags this script sets itself. The client's own `--help`
 * would name the client's task and offer `--host` and `--port`, which the
 * pair refuses.
 */
async function pairCommand(clientScript: string): Promise<CommandSpec> {
  const url = pathToFileURL(clientScript).href; // from the current folder
  const { COMMAND } = await import(url) as { COMMAND: CommandSpec };
  const { host: _host, port: _port, ...flags } = COMMAND.flags;
  return {
    name: COMMAND.name.replace(/-client$/, ""), // udp-time-client: udp-time
    summary: `${COMMAND.summary}
Its server runs alongside on a free port of 127.0.0.1, and stops when the client ends.`,
    flags,
  };
}

async function tag(
  lines: LineReader,
  prefix: string,
  print: (line: string) => void,
): Promise<void> {
  for await (const line of lines) print(prefix + line);
}

if (import.meta.main) await runMain(main);
