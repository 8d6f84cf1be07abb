/**
 * Servers that are wrong in one way each, for tests/bench_test.ts: the
 * benchmark must report every one of these faults, and a benchmark that
 * reports none of them would pass against any server.
 *
 * Run:   deno run --allow-net --unstable-net tests/faulty_servers.ts FAULT [--host H] --port 0
 *
 * A TCP fault is one of our own servers behind a proxy that spoils what the
 * server says to each client in one way (the lines from the client go
 * through untouched); a UDP fault is a stand-in time server. Each prints
 * `... listening on HOST:PORT` as our servers do, and exits 0 on SIGTERM
 * (except `calc-exit-1`).
 *
 * ```
 * chat-swap          of the first two MSG lines of one sender, the second comes first
 * chat-drop PREFIX   MSG lines whose text starts with PREFIX never arrive
 * chat-no-bye        QUIT gets a close instead of BYE
 * chat-close-quiet   a client is closed once the server has said nothing to it for 300 ms
 * calc-div-zero      "ERROR division by zero" comes as "0"
 * calc-no-goodbye    q gets a close instead of "Session ended"
 * calc-exit-1        answers right, but exits 1 on SIGTERM
 * time-error         every request is answered "ERROR nope"
 * time-drop          every 10th request gets no answer
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { startChatServer } from "../chat/server.ts";
import { LineReader, writeAll, writeLine } from "../lib/lines.ts";
import { closeQuietly } from "../lib/tcp_server.ts";
import { startCalcServer } from "../tcp/calc_server.ts";

/** In what a {@linkcode Spoil} gives: close the client's connection here. */
const CLOSE = Symbol("close");

/** What a client gets for one line its server sent it: lines, and maybe a close. */
type Spoil = (line: string) => (string | typeof CLOSE)[];

/** A TCP fault: which server sits behind the proxy, and a new Spoil per client. */
interface TcpFault {
  server: "chat" | "calc";
  spoil: (arg: string) => Spoil;
  /** Close a client once the server has sent it nothing for this long. */
  quietCloseMs?: number;
  exitCode?: number;
}

const TCP_FAULTS: Record<string, TcpFault> = {
  "chat-swap": {
    server: "chat",
    spoil: () => {
      let held: string | undefined;
      let done = false;
      return (line) => {
        if (done || !line.startsWith("MSG ")) return [line];
        if (held === undefined) {
          held = line;
          return [];
        }
        if (sender(line) !== sender(held)) return [line];
        done = true;
        return [line, held];
      };
    },
  },
  "chat-drop": {
    server: "chat",
    spoil: (prefix) => (line) =>
      line.startsWith("MSG ") && text(line).startsWith(prefix) ? [] : [line],
  },
  "chat-no-bye": {
    server: "chat",
    spoil: () => (line) => line === "BYE" ? [CLOSE] : [line],
  },
  "chat-close-quiet": {
    server: "chat",
    spoil: () => (line) => [line],
    quietCloseMs: 300,
  },
  "calc-div-zero": {
    server: "calc",
    spoil: () => (line) => [line === "ERROR division by zero" ? "0" : line],
  },
  "calc-no-goodbye": {
    server: "calc",
    spoil: () => (line) => line === "Session ended" ? [CLOSE] : [line],
  },
  "calc-exit-1": { server: "calc", spoil: () => (line) => [line], exitCode: 1 },
};

/** `MSG <from> <text>`: the sender. */
function sender(line: string): string {
  return line.split(" ", 2)[1];
}

/** `MSG <from> <text>`: the text. */
function text(line: string): string {
  return line.slice(line.indexOf(" ", 4) + 1);
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    options: {
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: "0" },
    },
    allowPositionals: true,
  });
  const [fault, arg = ""] = positionals;
  const hostname = values.host;
  const port = Number(values.port);
  if (fault in TCP_FAULTS) {
    const { server, spoil, quietCloseMs, exitCode = 0 } = TCP_FAULTS[fault];
    const upstream = startUpstream(server);
    const listener = Deno.listen({ hostname, port });
    announce(fault, listener.addr, exitCode);
    for await (const client of listener) {
      proxy(client, upstream, spoil(arg), quietCloseMs).catch(() => {});
    }
  } else if (fault === "time-error" || fault === "time-drop") {
    const socket = Deno.listenDatagram({ transport: "udp", hostname, port });
    announce(fault, socket.addr as Deno.NetAddr, 0);
    let requests = 0;
    for await (const [, from] of socket) {
      if (fault === "time-drop" && ++requests % 10 === 0) continue;
      const answer = fault === "time-error" ? "ERROR nope" : "12:34:56";
      await socket.send(new TextEncoder().encode(answer), from);
    }
  } else {
    console.error(`unknown fault: ${fault}`);
    Deno.exit(2);
  }
}

/** Our server of that kind on a port of its own, quiet. */
function startUpstream(kind: "chat" | "calc"): Deno.NetAddr {
  const options = { hostname: "127.0.0.1", port: 0, log: () => {} };
  return kind === "chat"
    ? startChatServer({ ...options, maxClients: 20000 }).addr
    : startCalcServer(options).addr;
}

/** The line the benchmark waits for; SIGTERM exits with `exitCode`. */
function announce(fault: string, addr: Deno.NetAddr, exitCode: number): void {
  Deno.addSignalListener("SIGTERM", () => Deno.exit(exitCode));
  console.log(
    `Faulty server (${fault}) listening on ${addr.hostname}:${addr.port}`,
  );
}

/** Relay one client to the server and back, spoiling what the server says. */
async function proxy(
  client: Deno.TcpConn,
  upstream: Deno.NetAddr,
  spoil: Spoil,
  quietCloseMs: number | undefined,
): Promise<void> {
  const server = await Deno.connect({
    hostname: upstream.hostname,
    port: upstream.port,
  });
  const closeBoth = () => {
    closeQuietly(client);
    closeQuietly(server);
  };
  let quiet: ReturnType<typeof setTimeout> | undefined;
  client.setNoDelay(true);
  server.setNoDelay(true);
  const toServer = (async () => {
    const buffer = new Uint8Array(16 * 1024);
    for (let n; (n = await client.read(buffer)) !== null;) {
      await writeAll(server, buffer.subarray(0, n));
    }
    await server.closeWrite();
  })();
  toServer.catch(() => {});
  try {
    for await (const line of new LineReader(server, { maxBytes: 1 << 20 })) {
      for (const out of spoil(line)) {
        if (out === CLOSE) return;
        await writeLine(client, out);
      }
      if (quietCloseMs !== undefined) {
        clearTimeout(quiet);
        quiet = setTimeout(closeBoth, quietCloseMs);
      }
    }
  } finally {
    clearTimeout(quiet);
    closeBoth();
  }
}
