/**
 * Helpers for the chat tests: the server a test judges (ours in-process, or
 * the one named by `CHAT_ADDR`), a chat client whose every wait has a
 * deadline, and login names unique to one test, so that leftovers of another
 * test on an external server never get in the way.
 *
 * @module
 */

import { type ChatServerOptions, startChatServer } from "../chat/server.ts";
import type { Target } from "./support.ts";
import {
  announceExternal,
  ANSWER_TIMEOUT_MS,
  LogCollector,
  notClosed,
  TestClient,
} from "./tcp_support.ts";

/** The external server under test, or `undefined` to start our own. */
export const EXTERNAL = announceExternal("CHAT_ADDR");

/** Why a check is skipped against an external server. */
export const NEEDS_OWN_SERVER = EXTERNAL !== undefined;

/** A chat server for one test, closed by `await using`. */
export interface TestServer extends AsyncDisposable {
  target: Target;
  /** The server's log (our own server only). */
  log: LogCollector;
}

/**
 * The server to judge: the external one when `CHAT_ADDR` is set, otherwise
 * ours on a free port of 127.0.0.1 with `options`.
 */
export function chatServer(
  options: Partial<ChatServerOptions> = {},
): TestServer {
  const log = new LogCollector();
  if (EXTERNAL) {
    return { target: EXTERNAL, log, [Symbol.asyncDispose]: async () => {} };
  }
  const server = startChatServer({
    hostname: "127.0.0.1",
    port: 0,
    log: log.add,
    ...options,
  });
  return {
    target: { hostname: "127.0.0.1", port: server.addr.port },
    log,
    [Symbol.asyncDispose]: () => server.close(),
  };
}

/**
 * Makes login names unique to one test: `names("ann")` -> `ann-k3x9`. Lines
 * about names without the test's tag are someone else's (an external server
 * may still be saying goodbye to an earlier test's clients).
 */
export class Names {
  readonly tag = Math.random().toString(36).slice(2, 6).padEnd(4, "0");

  /** `base` with this test's tag. */
  of(base: string): string {
    return `${base}-${this.tag}`;
  }

  /** True when `name` belongs to this test. */
  owns(name: string): boolean {
    return name.endsWith(`-${this.tag}`);
  }
}

/** A client of the chat server under test. Dispose it (`await using`). */
export class ChatClient implements AsyncDisposable {
  readonly client: TestClient;
  readonly #names: Names;
  /** The name it logged in with, if any. */
  name = "";

  private constructor(client: TestClient, names: Names) {
    this.client = client;
    this.#names = names;
  }

  static async connect(target: Target, names: Names): Promise<ChatClient> {
    return new ChatClient(await TestClient.connect(target), names);
  }

  /** Connect and log in as `names.of(base)`; fails unless WELCOME comes back. */
  static async login(
    target: Target,
    names: Names,
    base: string,
  ): Promise<ChatClient> {
    const client = await ChatClient.connect(target, names);
    try {
      await client.login(names.of(base));
      return client;
    } catch (error) {
      client.close();
      throw error;
    }
  }

  /** Send `LOGIN name` and expect `WELCOME name`. */
  async login(name: string): Promise<void> {
    await this.send(`LOGIN ${name}`);
    const answer = await this.next();
    if (answer !== `WELCOME ${name}`) {
      throw new Error(`LOGIN ${name} got ${answer}`);
    }
    this.name = name;
  }

  /** Send one line (`\n` added). */
  send(line: string): Promise<void> {
    return this.client.send(`${line}\n`);
  }

  /**
   * The next line for this test, or `null` when the server closed the
   * connection; JOINED/LEFT about other tests' clients are skipped.
   */
  async nextOrEnd(
    timeoutMs?: number,
    late?: string,
  ): Promise<string | null> {
    while (true) {
      const line = await this.client.readLine(timeoutMs, late);
      if (line === null) return null;
      const m = /^(JOINED|LEFT) (.*)$/.exec(line);
      if (m && EXTERNAL && !this.#names.owns(m[2])) continue;
      return line;
    }
  }

  /** The next line for this test; fails if the server closed instead. */
  async next(timeoutMs?: number): Promise<string> {
    const line = await this.nextOrEnd(timeoutMs);
    if (line === null) throw new Error("the server closed the connection");
    return line;
  }

  /** Send `line` and return the next line received. */
  async ask(line: string): Promise<string> {
    await this.send(line);
    return await this.next();
  }

  /** Read lines until one equals `expected`; fails if the server closes. */
  async waitFor(expected: string, timeoutMs?: number): Promise<void> {
    await this.linesUntil(expected, timeoutMs);
  }

  /** The lines before the one equal to `expected` (which is consumed). */
  async linesUntil(expected: string, timeoutMs?: number): Promise<string[]> {
    const seen: string[] = [];
    while (true) {
      const line = await this.nextOrEnd(timeoutMs);
      if (line === null) {
        throw new Error(
          `closed before ${expected}; saw: ${seen.slice(-5).join(" | ")}`,
        );
      }
      if (line === expected) return seen;
      seen.push(line);
    }
  }

  /** Fails unless the server closes the connection next; then closes ours. */
  async expectClosed(timeoutMs = ANSWER_TIMEOUT_MS): Promise<void> {
    const line = await this.nextOrEnd(timeoutMs, notClosed(timeoutMs));
    if (line !== null) throw new Error(`expected a close, got ${line}`);
    this.close();
  }

  close(): void {
    this.client.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }
}

/** `USERS ...` as a list of this test's names, in the order given. */
export function ownUsers(line: string, names: Names): string[] {
  if (!line.startsWith("USERS")) throw new Error(`not a USERS line: ${line}`);
  return line.split(" ").slice(1).filter((name) => names.owns(name));
}
