/**
 * How the TCP programs print text that came from the network: in quotes,
 * with every control or formatting character escaped, so that a peer cannot
 * clear the screen, move the cursor or reorder what is shown.
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
  return JSON.stringify(text).replace(
    UNSAFE,
    (c) => {
      const code = c.codePointAt(0)!.toString(16);
      return code.length > 4 ? `\\u{${code}}` : `\\u${code.padStart(4, "0")}`;
    },
  );
}
