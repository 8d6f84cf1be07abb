/**
 * The words of the chat protocol (chat/README.md, "The protocol underneath"),
 * shared by the server and the client: reading a client's line as a command,
 * checking a login name, removing control characters from text. No sockets
 * here, so the tests drive it from tables.
 *
 * ```
 * C: LOGIN alice            S: WELCOME alice        (others: JOINED alice)
 * C: SAY hello              (everyone else)  S: MSG alice hello
 * C: TELL bob psst          (bob only)       S: PRIVATE alice psst
 * C: WHO                    S: USERS alice bob
 * C: QUIT                   S: BYE                  (others: LEFT alice)
 * ```
 *
 * @module
 */

/** A login name: 1-24 letters, digits, `_`, `-`, `.` (unique ignoring case). */
export const NAME_PATTERN = /^[A-Za-z0-9_.-]{1,24}$/;

/** What a person is told about a name the server refused as invalid. */
export const NAME_RULE = "1-24 letters, digits, _ - .";

/**
 * C0 controls, DEL and C1 controls: everything that could move a terminal's
 * cursor, clear its screen or change its colours (ESC [ 2 J, CSI as \x9b).
 */
// Unicode's category Cc is exactly U+0000-U+001F, U+007F and U+0080-U+009F.
const CONTROL_CHARS = /\p{Cc}/gu;
const HAS_CONTROL_CHAR = /\p{Cc}/u;

/** One client line, read as a command; the verb is matched ignoring case. */
export type Command =
  | { verb: "LOGIN"; name: string }
  | { verb: "SAY"; text: string }
  | { verb: "WHO" }
  | { verb: "TELL"; to: string; text: string }
  | { verb: "QUIT" }
  | { verb: "UNKNOWN"; word: string };

/**
 * Read one line (without its `\n`) as a command. Text is returned with its
 * control characters already removed; names are returned as sent (check them
 * with {@linkcode isValidName}).
 *
 * ```
 * "say  hi"        -> { verb: "SAY", text: " hi" }    (one space separates)
 * "TELL bob a b"   -> { verb: "TELL", to: "bob", text: "a b" }
 * "JUMP"           -> { verb: "UNKNOWN", word: "JUMP" }
 * ```
 */
export function parseCommand(line: string): Command {
  const space = line.indexOf(" ");
  const word = space < 0 ? line : line.slice(0, space);
  const rest = space < 0 ? "" : line.slice(space + 1);
  // Verbs ignore ASCII case only: toUpperCase() alone would read "ſay"
  // (a long s) as SAY.
  switch (/^[a-z]+$/i.test(word) ? word.toUpperCase() : word) {
    case "LOGIN":
      return { verb: "LOGIN", name: rest };
    case "SAY":
      return { verb: "SAY", text: stripControls(rest) };
    case "WHO":
      return { verb: "WHO" };
    case "TELL": {
      const gap = rest.indexOf(" ");
      return gap < 0 ? { verb: "TELL", to: rest, text: "" } : {
        verb: "TELL",
        to: rest.slice(0, gap),
        text: stripControls(rest.slice(gap + 1)),
      };
    }
    case "QUIT":
      return { verb: "QUIT" };
    default:
      return { verb: "UNKNOWN", word };
  }
}

/** True when `name` may be used to log in. */
export function isValidName(name: string): boolean {
  return NAME_PATTERN.test(name);
}

/** `text` without control characters: `"a\x1b[2Jb"` -> `"a[2Jb"`. */
export function stripControls(text: string): string {
  return HAS_CONTROL_CHAR.test(text) ? text.replace(CONTROL_CHARS, "") : text;
}

/** True when text has nothing left to show (empty or only spaces). */
export function isBlank(text: string): boolean {
  return text.trim() === "";
}
