/**
 * Helpers for the UDP tests: a test socket that remembers who sent each
 * datagram and waits for the next one with a deadline, a fake server whose
 * behaviour a test scripts, a UDP port with nothing bound (and a check that
 * a server's port is freed), the server a protocol test judges (ours, or one
 * named by `UDP_*_ADDR`), and sockets in memory to see servers' loops talk to
 * each other.
 *
 * @module
 */

import assert from "node:assert/strict";
import { lookupServer } from "../udp/datagram.ts";
import { externalTarget, startScript } from "./support.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One received datagram and its sender. */
export interface Received {
  data: Uint8Array;
  /** `data` decoded (invalid UTF-8 as U+FFFD). */
  text: string;
  from: Deno.NetAddr;
}

/**
 * A UDP socket on 127.0.0.1 (or ::1) port 0 whose datagrams queue up until
 * {@linkcode TestSocket.receive} takes them. Dispose it (`await using`).
 */
export class TestSocket implements AsyncDisposable {
  readonly conn: Deno.DatagramConn;
  readonly #queue: Received[] = [];
  #wake?: () => void;
  #closed = false;
  readonly #reading: Promise<void>;

  constructor(hostname = "127.0.0.1") {
    this.conn = Deno.listenDatagram({ hostname, port: 0, transport: "udp" });
    this.#reading = this.#read();
  }

  /** The address datagrams to this socket go to. */
  get addr(): Deno.NetAddr {
    return this.conn.addr as Deno.NetAddr;
  }

  async #read(): Promise<void> {
    while (true) {
      try {
        const [data, from] = await this.conn.receive();
        this.#queue.push({
          data,
          text: decoder.decode(data),
          from: from as Deno.NetAddr,
        });
      } catch {
        this.#closed = true;
        return;
      } finally {
        this.#wake?.();
      }
    }
  }

  /** Send text or bytes to `to`. */
  async send(data: string | Uint8Array, to: Deno.NetAddr): Promise<void> {
    await this.conn.send(
      typeof data === "string" ? encoder.encode(data) : data,
      to,
    );
  }

  /** The next datagram; fails the test if none comes within `timeoutMs`. */
  async receive(timeoutMs = 3000): Promise<Received> {
    const got = await this.#next(timeoutMs);
    if (!got) throw new Error(`no datagram within ${timeoutMs} ms`);
    return got;
  }

  /** Send `data` to `to` and return the next datagram received. */
  async ask(
    data: string | Uint8Array,
    to: Deno.NetAddr,
    timeoutMs = 3000,
  ): Promise<Received> {
    await this.send(data, to);
    return await this.receive(timeoutMs);
  }

  /** The next datagram, or `undefined` after `timeoutMs` or on close. */
  async #next(timeoutMs: number): Promise<Received | undefined> {
    if (this.#queue.length === 0 && !this.#closed) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, timeoutMs);
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.#wake = done;
      });
      this.#wake = undefined;
    }
    return this.#queue.shift();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.conn.close();
    await this.#reading;
  }
}

/** What a fake server does with one datagram: `reply` answers its sender. */
export type FakeHandler = (
  received: Received,
  reply: (answer: string | Uint8Array) => Promise<void>,
) => void | Promise<void>;

/**
 * A server a test scripts (drop, answer late, answer from elsewhere): every
 * datagram is recorded in `received`, then passed to `handler`.
 */
export class FakeServer implements AsyncDisposable {
  readonly socket: TestSocket;
  readonly received: Received[] = [];
  readonly #serving: Promise<void>;

  constructor(handler: FakeHandler, hostname = "127.0.0.1") {
    this.socket = new TestSocket(hostname);
    this.#serving = this.#serve(handler);
  }

  get addr(): Deno.NetAddr {
    return this.socket.addr;
  }

  async #serve(handler: FakeHandler): Promise<void> {
    while (true) {
      let got: Received;
      try {
        got = await this.socket.receive(60_000);
      } catch {
        return; // closed (or idle for a minute)
      }
      this.received.push(got);
      await handler(got, (answer) => this.socket.send(answer, got.from));
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.socket[Symbol.asyncDispose]();
    await this.#serving;
  }
}

/** A UDP port of 127.0.0.1 with nothing bound to it at this moment. */
export function freeUdpPort(): number {
  const socket = Deno.listenDatagram({
    hostname: "127.0.0.1",
    port: 0,
    transport: "udp",
  });
  const { port } = socket.addr as Deno.NetAddr;
  socket.close();
  return port;
}

/**
 * Check that a server once on this UDP port of 127.0.0.1 is gone: binding
 * the port works (it throws `AddrInUse` while the server still holds it).
 */
export function assertUdpPortFree(port: number): void {
  Deno.listenDatagram({ hostname: "127.0.0.1", port, transport: "udp" })
    .close();
}

/**
 * The server named by environment variable `name` (e.g. `UDP_TIME_ADDR`),
 * resolved to its numeric address, or `undefined` to test our own.
 */
export async function externalUdpTarget(
  name: string,
): Promise<Deno.NetAddr | undefined> {
  const target = externalTarget(name);
  if (!target) return undefined;
  return await lookupServer(target.hostname, target.port);
}

/** What our UDP servers' start functions take (among other options). */
export interface UdpServerOptions {
  hostname: string;
  port: number;
  log: (line: string) => void;
  warn: (line: string) => void;
}

/**
 * Run `check` against `external` (the server a `UDP_*_ADDR` names), or,
 * when there is none, against a fresh server from `start` on 127.0.0.1,
 * whose log lines and warnings (as `warn: ...`) it collects.
 */
export async function withUdpTarget(
  external: Deno.NetAddr | undefined,
  start: (
    options: UdpServerOptions,
  ) => AsyncDisposable & { readonly addr: Deno.NetAddr },
  check: (target: Deno.NetAddr, log: string[]) => Promise<void>,
): Promise<void> {
  if (external) return await check(external, []);
  const log: string[] = [];
  await using server = start({
    hostname: "127.0.0.1",
    port: 0,
    log: (line) => log.push(line),
    warn: (line) => log.push(`warn: ${line}`),
  });
  await check(server.addr, log);
}

/**
 * Start the UDP server `script` on a port another socket holds: it must say
 * so in one sentence on stderr and exit 1.
 */
export async function checkPortInUse(script: string): Promise<void> {
  await using taken = new TestSocket();
  await using server = startScript(script, [
    "--host",
    "127.0.0.1",
    "--port",
    String(taken.addr.port),
  ]);
  const result = await server.finish();
  assert.equal(result.code, 1);
  assert.equal(result.stdout, "");
  assert.match(
    result.stderr,
    /^Cannot listen on 127\.0\.0\.1:\d+\/udp: the port is already in use[^\n]*\n$/,
  );
}

/** Whether this machine can bind `::1` (some containers have no IPv6). */
export const HAS_IPV6: boolean = (() => {
  try {
    Deno.listenDatagram({ hostname: "::1", port: 0, transport: "udp" }).close();
    return true;
  } catch {
    console.log(
      "No IPv6 on this machine (cannot bind ::1): IPv6 checks skipped.",
    );
    return false;
  }
})();

/** The sender of every datagram a {@linkcode scriptedSocket} receives. */
export const SCRIPTED_SENDER: Deno.NetAddr = {
  transport: "udp",
  hostname: "127.0.0.1",
  port: 9,
};

/**
 * A stand-in for a server's UDP socket, to see a receive loop survive
 * errors: `receive()` gives `events` in order (a string is a datagram from
 * {@linkcode SCRIPTED_SENDER}, an Error a failed receive), then fails as a
 * closed socket does, which ends the loop; `send()` records each answer in
 * `sent` and fails the first time, with `firstSendError`.
 */
export function scriptedSocket(
  events: (Error | string)[],
  firstSendError: Error,
): {
  socket: Pick<Deno.DatagramConn, "receive" | "send" | "addr">;
  sent: string[];
} {
  const sent: string[] = [];
  const socket = {
    addr: { ...SCRIPTED_SENDER, port: SCRIPTED_SENDER.port + 1 },
    receive(): Promise<[Uint8Array<ArrayBuffer>, Deno.Addr]> {
      const next = events.shift();
      if (next === undefined) {
        return Promise.reject(new Deno.errors.BadResource("closed"));
      }
      if (next instanceof Error) return Promise.reject(next);
      return Promise.resolve([new TextEncoder().encode(next), SCRIPTED_SENDER]);
    },
    send(data: Uint8Array): Promise<number> {
      sent.push(new TextDecoder().decode(data));
      if (sent.length === 1) return Promise.reject(firstSendError);
      return Promise.resolve(data.length);
    },
  };
  return { socket, sent };
}

/**
 * A network in memory for server loops (`serveHello`, `serveTime`): each of
 * its sockets has an address on 127.0.0.1, and what one sends to another's
 * address (or its own) arrives there, from the sender's address, in order.
 * Everything happens in promise callbacks, so once a test has waited one
 * timer turn ({@linkcode FakeNetwork.settled}), every datagram that was
 * going to be sent has been. At most `limit` datagrams are delivered, then
 * the rest are dropped: two loops that answer each other forever stop there
 * (and `delivered` shows it) instead of hanging the test.
 */
export class FakeNetwork {
  /** Each datagram delivered, as `fromPort -> toPort: text`. */
  readonly delivered: string[] = [];
  readonly #sockets = new Map<number, FakeSocket>();
  readonly #limit: number;

  constructor(limit: number) {
    this.#limit = limit;
  }

  /** A socket of this network at 127.0.0.1:`port`. */
  socket(port: number): FakeSocket {
    const socket = new FakeSocket(
      { transport: "udp", hostname: "127.0.0.1", port },
      (data, from, to) => this.#deliver(data, from, to),
    );
    this.#sockets.set(port, socket);
    return socket;
  }

  /** Put a datagram on the wire as if `from` had sent it (a forged source). */
  inject(text: string, from: Deno.NetAddr, to: Deno.NetAddr): void {
    this.#sockets.get(to.port)?.arrive(encoder.encode(text), from);
  }

  #deliver(data: Uint8Array, from: Deno.NetAddr, to: Deno.Addr): void {
    if (this.delivered.length >= this.#limit) return; // dropped
    const port = (to as Deno.NetAddr).port;
    this.delivered.push(`${from.port} -> ${port}: ${decoder.decode(data)}`);
    this.#sockets.get(port)?.arrive(data.slice(), from);
  }

  /** Resolves once every promise callback queued so far has run. */
  settled(): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, 0));
  }

  /** Close every socket: pending receives fail, as on a closed socket. */
  close(): void {
    for (const socket of this.#sockets.values()) socket.close();
  }
}

/** What `receive()` gives: the bytes and who sent them. */
type Datagram = [Uint8Array<ArrayBuffer>, Deno.Addr];

/** One socket of a {@linkcode FakeNetwork}. */
export class FakeSocket {
  readonly addr: Deno.NetAddr;
  readonly #send: (data: Uint8Array, from: Deno.NetAddr, to: Deno.Addr) => void;
  readonly #queue: Datagram[] = [];
  readonly #waiting: {
    resolve: (datagram: Datagram) => void;
    reject: (error: Error) => void;
  }[] = [];
  #closed = false;

  constructor(
    addr: Deno.NetAddr,
    send: (data: Uint8Array, from: Deno.NetAddr, to: Deno.Addr) => void,
  ) {
    this.addr = addr;
    this.#send = send;
  }

  receive(): Promise<Datagram> {
    if (this.#closed) {
      return Promise.reject(new Deno.errors.BadResource("closed"));
    }
    const next = this.#queue.shift();
    if (next) return Promise.resolve(next);
    return new Promise((resolve, reject) =>
      this.#waiting.push({ resolve, reject })
    );
  }

  send(data: Uint8Array, to: Deno.Addr): Promise<number> {
    this.#send(data, this.addr, to);
    return Promise.resolve(data.length);
  }

  /** A datagram reaches this socket. */
  arrive(data: Uint8Array<ArrayBuffer>, from: Deno.Addr): void {
    const waiter = this.#waiting.shift();
    if (waiter) waiter.resolve([data, from]);
    else this.#queue.push([data, from]);
  }

  close(): void {
    this.#closed = true;
    for (const waiter of this.#waiting.splice(0)) {
      waiter.reject(new Deno.errors.BadResource("closed"));
    }
  }
}
