/**
 * The chat room: the one owner of who is logged in, in joining order, and
 * the only code that sends a line to more than one member. Members are
 * anything with a name and a `send` (a server connection, or a test double),
 * so the room's rules are tested without sockets.
 *
 * ```
 * join(alice)                 everyone else: JOINED alice
 * say(alice, "hi")            everyone else: MSG alice hi
 * tell(alice, "bob", "psst")  bob only:      PRIVATE alice psst
 * who()                       USERS alice bob
 * leave(alice)                everyone else: LEFT alice
 * ```
 *
 * @module
 */

import { encodeLine } from "../lib/lines.ts";
import { type SharedLine, SharedLog } from "../lib/outbox.ts";

/** A logged-in client as the room sees it. */
export interface Member {
  /** The login name, as the client typed it. */
  readonly name: string;
  /** Queue one encoded line for this member; must not wait or throw. */
  send(line: Uint8Array): void;
  /**
   * Queue a broadcast line (MSG), stored once in the room's log for every
   * member: like `send`, but written from the shared log, not copied per
   * member (lib/outbox.ts).
   */
  share(line: SharedLine): void;
  /**
   * Queue a notice (JOINED, LEFT), stored once in the room's log:
   * like `send`, but it may be held back a few milliseconds to travel with
   * others (a thousand people joining at once would otherwise cost a
   * million separate writes).
   */
  notify(notice: SharedLine): void;
}

/** Who is in the room, and how lines reach them. */
export class Room<M extends Member = Member> {
  /** Lower-cased name -> member; a Map keeps joining order. */
  readonly #members = new Map<string, M>();
  /** Every MSG, JOINED and LEFT line, stored once for all members. */
  readonly #log = new SharedLog();

  /** How many members are in the room. */
  get size(): number {
    return this.#members.size;
  }

  /** The member called `name` (ignoring case), if any. */
  find(name: string): M | undefined {
    return this.#members.get(name.toLowerCase());
  }

  /** True when `member` itself (not just its name) is in the room. */
  has(member: M): boolean {
    return this.#members.get(member.name.toLowerCase()) === member;
  }

  /**
   * Add `member` and tell everyone else (`JOINED <name>`). Returns false, and
   * changes nothing, when its name is taken (ignoring case).
   */
  join(member: M): boolean {
    const key = member.name.toLowerCase();
    if (this.#members.has(key)) return false;
    this.#notifyAll(`JOINED ${member.name}`);
    this.#members.set(key, member);
    return true;
  }

  /** Remove `member` and tell the others (`LEFT <name>`); false if absent. */
  leave(member: M): boolean {
    if (!this.has(member)) return false;
    this.#members.delete(member.name.toLowerCase());
    this.#notifyAll(`LEFT ${member.name}`);
    return true;
  }

  /** `MSG <from> <text>` to everyone but the sender. */
  say(from: M, text: string): void {
    this.#broadcast(`MSG ${from.name} ${text}`, from);
  }

  /** `PRIVATE <from> <text>` to the member called `to`; returns it, if any. */
  tell(from: M, to: string, text: string): M | undefined {
    const target = this.find(to);
    target?.send(encodeLine(`PRIVATE ${from.name} ${text}`));
    return target;
  }

  /** The answer to WHO: `USERS <name> <name> ...` in joining order. */
  who(): string {
    return ["USERS", ...this.names()].join(" ");
  }

  /** Members' names in joining order. */
  names(): string[] {
    return Array.from(this.#members.values(), (m) => m.name);
  }

  /** Store `text` once and queue it for every member but one. */
  #broadcast(text: string, except?: M): void {
    const line = this.#log.append(encodeLine(text));
    for (const member of this.#members.values()) {
      if (member !== except) member.share(line);
    }
  }

  /** Store a notice once and queue it for every member. */
  #notifyAll(text: string): void {
    const notice = this.#log.append(encodeLine(text));
    for (const member of this.#members.values()) member.notify(notice);
  }
}
