/**
 * UDP hello server (lab part 1, Q1-Q2): prints each datagram it receives
 * with the sender's address, and answers `Ok` to that sender.
 *
 * Run:  deno run --allow-net --unstable-net udp/hello_server.ts   (or: deno task udp-hello-server)
 * Try:  deno task udp-hello-client, or by hand: nc -u 127.0.0.1 12000 and type a line
 *
 * One datagram each way (the client's port is whatever its system chose):
 *
 *     127.0.0.1:54321 -> 127.0.0.1:12000   I could tell you a UDP joke but I'm not sure you'll get it.
 *     127.0.0.1:54321 <- 127.0.0.1:12000   Ok
 *
 * (The server's socket is bound to 0.0.0.0, meaning every address this
 * computer has; a datagram always carries the one real address it was sent
 * to, here 127.0.0.1.)
 *
 * A datagram socket has no connection and no client list: the one socket
 * receives from anybody, and each receive() says who sent that datagram,
 * which is the only way to know where the answer goes.
 *
 * Not answered, only printed: its own answer `Ok`, and anything from the
 * server's own address; answering those can set two servers (or one)
 * talking forever.
 *
 * @module
 */

import { batchedStdout } from "../lib/batched_log.ts";
import { parseFlags, runMain, serverFlags } from "../lib/cli.ts";
import { formatAddr, listenUdp, onShutdown } from "../lib/net.ts";
import {
  addrText,
  isClosedError,
  isOk,
  showDatagram,
  whyNotAnswer,
} from "./datagram.ts";

/** The port of the contract's table (12000/udp). */
export const DEFAULT_PORT = 12000;

const COMMAND = {
  name: "udp-hello-server",
  summary: "UDP hello server: prints each message and answers Ok.",
  flags: serverFlags(DEFAULT_PORT),
} as const;

const OK = new TextEncoder().encode("Ok");

/** Where to listen, and where the log lines go (tests collect them). */
export interface HelloServerOptions {
  hostname: string;
  port: number;
  /** One line per message (default `console.log`). */
  log?: (line: string) => void;
  /** Receive or send failures, which do not stop the server (default `console.error`). */
  warn?: (line: string) => void;
}

/** A running hello server. */
export interface HelloServer extends AsyncDisposable {
  /** The address it listens on, with the real port. */
  readonly addr: Deno.NetAddr;
  /** Close the socket; resolves when the receive loop has ended. */
  close(): Promise<void>;
}

/** Bind the socket and answer every datagram until {@linkcode HelloServer.close}. */
export function startHelloServer(options: HelloServerOptions): HelloServer {
  // Binding takes the port: from now on the system keeps the datagrams sent
  // to it until we receive them (or its buffer is full, and they are lost).
  // The socket call is Deno.listenDatagram({ hostname, port, transport:
  // "udp" }); listenUdp (lib/net.ts) only adds a plain sentence for a port
  // that is taken.
  const socket = listenUdp(options.hostname, options.port);
  const served = serveHello(
    socket,
    options.log ?? console.log,
    options.warn ?? console.error,
  );
  let open = true;
  async function close() {
    if (open) socket.close(); // a pending receive() fails: the loop ends
    open = false;
    await served;
  }
  return {
    addr: socket.addr as Deno.NetAddr,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/**
 * Receive a datagram, print it, answer its sender (unless
 * {@linkcode whyNotAnswer} says not to); again, until the socket is closed.
 * A receive or send error is printed and the loop goes on.
 *
 *     Message from 127.0.0.1:54321: "hello"
 *     Message from 127.0.0.1:12001: "Ok" (not answered: it is an answer, not a request)
 */
export async function serveHello(
  socket: Pick<Deno.DatagramConn, "receive" | "send" | "addr">,
  log: (line: string) => void,
  warn: (line: string) => void,
): Promise<void> {
  const self = socket.addr as Deno.NetAddr;
  while (true) {
    let datagram: [Uint8Array, Deno.Addr];
    try {
      datagram = await socket.receive();
    } catch (error) {
      if (isClosedError(error)) return;
      warn(`Receive failed, going on: ${(error as Error).message}`);
      continue;
    }
    const [data, sender] = datagram;
    const message = `Message from ${addrText(sender)}: ${showDatagram(data)}`;
    const ignored = whyNotAnswer(data, sender, self, isOk);
    if (ignored !== null) {
      log(`${message} (not answered: ${ignored})`);
      continue;
    }
    log(message);
    try {
      await socket.send(OK, sender);
    } catch (error) {
      if (isClosedError(error)) return;
      warn(`Cannot answer ${addrText(sender)}: ${(error as Error).message}`);
    }
  }
}

async function main(): Promise<void> {
  const flags = parseFlags(COMMAND);
  const stdout = batchedStdout(); // a full disk under `> log.txt` stops no server
  const server = startHelloServer({
    hostname: flags.host,
    port: flags.port,
    log: stdout.log,
  });
  // Listen for Ctrl+C and SIGTERM before saying we are ready.
  const stopped = new Promise((stop) => onShutdown(stop));
  stdout.print(`UDP hello server listening on ${formatAddr(server.addr)}`);
  await stopped;
  await server.close();
  await stdout.close("UDP hello server stopped");
}

if (import.meta.main) await runMain(main, COMMAND);
