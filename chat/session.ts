/**
 * One client's connection to the chat server: reads its lines, answers its
 * commands, and takes it in and out of the room. Each session owns its
 * socket and its {@linkcode Outbox}; the room owns the list of members.
 *
 * ```
 * C: SAY hi            S: ERROR not logged in     (only LOGIN and QUIT before WELCOME)
 * C: LOGIN alice       S: WELCOME alice
 * C: TELL nobody hi    S: ERROR no such user
 * C: QUIT              S: BYE                      (then the server closes)
 * ```
 *
 * @module
 */

import { isConnectionLost } from "../lib/errors.ts";
import { encodeLine, LineReader, LineTooLongError } from "../lib/lines.ts";
import { formatAddr } from "../lib/net.ts";
import { Outbox, type OutboxOwner, type SharedLine } from "../lib/outbox.ts";
import { escapeControls } from "../lib/printable.ts";
import { Throttle } from "../lib/throttle.ts";
import { isBlank, isValidName, NAME_RULE, parseCommand } from "./protocol.ts";
import type { Member, Room } from "./room.ts";

/**
 * Bytes read at a time at first. Lines are at most 1024 bytes and the reader
 * grows its buffer for a long one, so a small buffer keeps an idle client
 * cheap (thousands of them may be connected).
 */
const READ_BUFFER_BYTES = 128;
/**
 * The reader doubles its buffer, up to this, while reads fill it: a client
 * that sends fast is read in a few big reads, and all the lines of one read
 * are answered (and their broadcasts written) together.
 */
const MAX_READ_BUFFER_BYTES = 16 * 1024;

/**
 * What a line costs its sender's throttle beyond its own bytes: what each
 * reader gets besides the text (`MSG <name> `, up to 30 bytes) and the work
 * of one more line, so that a flood of short lines is slowed down too.
 */
export const LINE_COST = 64;

/** What every session of one server shares: the room, the log, the limits. */
export interface SessionContext {
  room: Room<Session>;
  log: (line: string) => void;
  /** Most bytes queued for a client that does not read; past it, dropped. */
  maxQueue: number;
  /** Longest line accepted from a client, in bytes. */
  maxLine: number;
  /** Time to send a good LOGIN, in ms (0: no limit). */
  loginTimeoutMs: number;
  /** Time a client has to close after the server's last words, in ms. */
  lingerMs: number;
  /**
   * Bytes a client may send per second (a quarter of it at once), each line
   * counting {@linkcode LINE_COST} more, its first line not at all; a faster
   * one is read more slowly (lib/throttle.ts).
   */
  maxRate: number;
  /**
   * Called as the session is told to go (its last words said, or it is
   * dropped): from then on it takes no place under --max-clients, though
   * its connection may stay open a moment for the client to read them.
   */
  leaving: (session: Session) => void;
  /**
   * Called once, as the session ends, its connection closed: the server
   * forgets it. (One function for every session, where an `await` on each
   * session's end would keep one more suspended function per idle client.)
   */
  ended: (conn: Deno.TcpConn, session: Session) => void;
}

/**
 * A connected client, logged in (a room member) once `name` is set.
 * Kept small on purpose: a server may hold thousands of idle ones.
 */
export class Session implements Member, OutboxOwner {
  /** The login name; empty until the room accepts it. */
  name = "";
  readonly #conn: Deno.TcpConn;
  readonly #context: SessionContext;
  readonly #outbox: Outbox;
  #throttle: Throttle | undefined; // from its second line on
  #endPause: (() => void) | undefined; // cuts a throttle's wait short
  #closing = false; // last words said: ignore further input
  #closed = false;
  #timer: ReturnType<typeof setTimeout> | undefined; // login deadline, later the linger deadline

  constructor(conn: Deno.TcpConn, context: SessionContext) {
    this.#conn = conn;
    this.#context = context;
    this.#outbox = new Outbox(conn, context.maxQueue, this);
  }

  /** The client's address, as `host:port`. */
  get addr(): string {
    return formatAddr(this.#conn.remoteAddr);
  }

  /** Queue a line for this client (the room calls it for PRIVATE). */
  send(line: Uint8Array): void {
    this.#outbox.push(line);
  }

  /** Queue a broadcast line (the room calls it for MSG). */
  share(line: SharedLine): void {
    this.#outbox.pushShared(line);
  }

  /** Queue a JOINED or LEFT line; it may wait a few ms for company. */
  notify(notice: SharedLine): void {
    this.#outbox.pushNotice(notice);
  }

  /**
   * Serve the connection until it ends: handle the lines of each read, all
   * of them before waiting for the next read. I/O trouble ends only this
   * session; it never throws for it.
   */
  async run(): Promise<void> {
    const { log, loginTimeoutMs, maxLine } = this.#context;
    log(`${this.addr} connected`);
    if (loginTimeoutMs > 0) { // end() replaces this timer with its own
      this.#timer = setTimeout(() => this.#loginTimedOut(), loginTimeoutMs);
    }
    const reader = new LineReader(this.#conn, {
      maxBytes: maxLine,
      bufferSize: READ_BUFFER_BYTES,
      maxBufferSize: MAX_READ_BUFFER_BYTES,
    });
    try {
      let line;
      let first = true; // a session's first line is not counted: see #charge
      while (!this.#closing && (line = await reader.readLine()) !== null) {
        this.#handle(line);
        // A client that sends more than the others can read is slowed down.
        const wait = first ? 0 : this.#charge(reader.lineBytes + LINE_COST);
        if (wait > 0) await this.#pause(wait);
        first = false;
      }
      if (this.#closing && !this.#closed) await discardInput(this.#conn);
    } catch (error) {
      if (error instanceof LineTooLongError) {
        this.end("ERROR line too long");
        await discardInput(this.#conn).catch(ignoreConnectionError);
      } else if (!isConnectionLost(error)) throw error;
    } finally {
      clearTimeout(this.#timer);
      this.#leave();
      // A client may send its last lines and half-close at once
      // (`printf 'LOGIN ann\nWHO\n' | nc -N host 5000`): its answers are
      // still queued, and it is still reading.
      await this.#drain();
      this.#close();
      this.#context.ended(this.#conn, this);
      log(`${this.addr} disconnected`);
    }
  }

  /**
   * Count a line against `maxRate`; returns how many ms to wait before
   * reading the next. Every line counts, whatever it says: a flood of `WHO`,
   * or of junk before `LOGIN`, keeps the server from the others as much as a
   * flood of `SAY`. Every line but a session's first, though (`run` skips
   * it): a client that only listens sends nothing but its `LOGIN`, so
   * thousands of listeners carry no throttle.
   */
  #charge(bytes: number): number {
    const { maxRate } = this.#context;
    this.#throttle ??= new Throttle(maxRate, maxRate / 4);
    return this.#throttle.take(bytes);
  }

  /** Wait `ms` before reading more, unless the session ends first. */
  #pause(ms: number): Promise<void> {
    return new Promise((resume) => {
      const timer = setTimeout(resume, ms);
      this.#endPause = () => {
        clearTimeout(timer);
        resume();
      };
    });
  }

  /** Wait until what is queued has been written, or the linger time. */
  async #drain(): Promise<void> {
    let timer;
    const { lingerMs } = this.#context;
    const late = new Promise((done) => timer = setTimeout(done, lingerMs));
    await Promise.race([this.#outbox.flushed(), late]);
    clearTimeout(timer);
  }

  /**
   * Say `lastLine`, leave the room, and close once the client has read it
   * (the client closing first, or `lingerMs` passing, whichever comes first).
   */
  end(lastLine: string, lingerMs = this.#context.lingerMs): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#context.leaving(this);
    this.#endPause?.();
    this.#leave();
    this.#reply(lastLine);
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#close(), lingerMs);
    // Half-close after the last byte: the client sees the end of the stream,
    // and its unread input does not turn our close into a reset.
    this.#outbox.flushed().then(() => this.#closeWrite());
  }

  /** The client let too much pile up unread: drop it (others see LEFT). */
  onOverflow(queuedBytes: number): void {
    this.#context.log(
      `${this.name || this.addr} dropped: ${queuedBytes} bytes unread`,
    );
    this.#closing = true;
    this.#context.leaving(this);
    this.#endPause?.();
    // Not inside the broadcast that overflowed: its LEFT would overtake it.
    queueMicrotask(() => {
      this.#leave();
      this.#close();
    });
  }

  /** A write failed: the connection is gone. */
  onWriteError(): void {
    this.#close();
  }

  #handle(line: string): void {
    // The read that brought this line may have been waiting when the session
    // ended (the login deadline passed, the server was full or is stopping):
    // its line is not answered.
    if (this.#closing) return;
    const command = parseCommand(line);
    switch (command.verb) {
      case "QUIT":
        return this.end("BYE");
      case "LOGIN":
        return this.#login(command.name);
      case "UNKNOWN":
        return this.#reply("ERROR unknown command");
    }
    if (!this.name) return this.#reply("ERROR not logged in");
    switch (command.verb) {
      case "WHO":
        return this.#reply(this.#context.room.who());
      case "SAY":
        return this.#say(command.text);
      case "TELL":
        return this.#tell(command.to, command.text);
    }
  }

  // C: LOGIN alice   S: WELCOME alice   (everyone else: JOINED alice)
  #login(name: string): void {
    if (this.name) return this.#reply("ERROR already logged in");
    if (!isValidName(name)) {
      return this.#reply(`ERROR invalid name (${NAME_RULE})`);
    }
    this.name = name;
    if (!this.#context.room.join(this)) {
      this.name = "";
      return this.#reply("ERROR name taken");
    }
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#context.log(`${this.addr} logged in as ${name}`);
    this.#reply(`WELCOME ${name}`);
  }

  // C: SAY hi   (everyone else) S: MSG alice hi
  #say(text: string): void {
    if (isBlank(text)) return this.#reply("ERROR empty message");
    this.#context.log(`${this.name}: ${escapeControls(text)}`);
    this.#context.room.say(this, text);
  }

  // C: TELL bob psst   (bob) S: PRIVATE alice psst
  #tell(to: string, text: string): void {
    if (isBlank(text)) return this.#reply("ERROR empty message");
    const target = this.#context.room.tell(this, to, text);
    if (!target) return this.#reply("ERROR no such user");
    this.#context.log(
      `${this.name} -> ${target.name}: ${escapeControls(text)}`,
    );
  }

  #reply(text: string): void {
    this.#outbox.push(encodeLine(text));
  }

  #loginTimedOut(): void {
    this.#context.log(`${this.addr} did not log in in time`);
    this.end("ERROR login timeout");
  }

  #leave(): void {
    if (this.#context.room.leave(this)) {
      this.#context.log(`${this.name} left`);
    }
  }

  #closeWrite(): void {
    if (this.#closed) return;
    try {
      this.#conn.closeWrite().catch(ignoreConnectionError);
    } catch (error) {
      ignoreConnectionError(error);
    }
  }

  /** Close the socket; a pending read or write fails and ends the session. */
  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#endPause?.();
    this.#outbox.close();
    try {
      this.#conn.close();
    } catch (error) {
      ignoreConnectionError(error);
    }
  }
}

/** Read and forget whatever the client still sends, until it closes. */
async function discardInput(conn: Deno.Conn): Promise<void> {
  const scrap = new Uint8Array(512);
  while (await conn.read(scrap) !== null) {
    // The client's lines after our last words are not answered.
  }
}

function ignoreConnectionError(error: unknown): void {
  if (!isConnectionLost(error)) throw error;
}
