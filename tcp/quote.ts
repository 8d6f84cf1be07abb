/**
 * How the TCP programs print text that came from the network: every
 * control or formatting character escaped, so that a peer cannot clear the
 * screen, move the cursor or reorder what is shown; in quotes where the text
 * is shown as a string ({@linkcode quote}), as it is where it is the answer
 * itself ({@linkcode printable}).
 *
 * @example
 * ```ts
 * import { quote } from "./quote.ts";
 * console.assert(quote("12 + 13") === '"12 + 13"');
 * console.assert(quote("\x1b[2J") === '"\\u001b[2J"');
 * ```
 *
 * @module
 */

// C0 is escaped by JSON.stringify; DEL, C1 and the invisible format
// characters (such as U+202E, right-to-left override) are escaped here.
const UNSAFE = /[\x7f-\x9f\p{Cf}\u2028\u2029]/gu;
// The same with C0 (\p{Cc} is C0, DEL and C1), for text shown without quotes.
const UNPRINTABLE = /[\p{Cc}\p{Cf}\u2028\u2029]/gu;

/**
 * `text` as a quoted string literal, safe to print (`"\u001b[2J"`).
 *
 * @example
 * ```ts
 * import { quote } from "./quote.ts";
 * console.assert(quote("a\u202eb") === '"a\\u202eb"');
 * ```
 */
export function quote(text: string): string {
  return JSON.stringify(text).replace(UNSAFE, escape);
}

/**
 * `text` as it is, but with every control or formatting character escaped
 * (`25` stays `25`; a screen-clearing `ESC[2J` shows as `\u001b[2J`).
 *
 * @example
 * ```ts
 * import { printable } from "./quote.ts";
 * console.assert(printable("Hello Ada") === "Hello Ada");
 * console.assert(printable("\x1b[2J25") === "\\u001b[2J25");
 * ```
 */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, escape);
}

/** `\u001b`, or `\u{1f4a9}` past U+FFFF. */
function escape(c: string): string {
  const code = c.codePointAt(0)!.toString(16);
  return code.length > 4 ? `\\u{${code}}` : `\\u${code.padStart(4, "0")}`;
}
