/**
 * Printing text that came from the network. Printed raw, a peer's text
 * could clear the screen (`ESC [2J`), move the cursor, recolour the
 * terminal, or reorder a line with U+202E (right-to-left override). So
 * every control, format, private-use, lone surrogate, line or paragraph
 * separator character is shown as an escape, the same way in every
 * exercise:
 *
 *     \n  \r  \t               the three everybody knows, by name
 *     \x1b  \x07  \x9b         other code points below U+0100
 *     \u{202e}  \u{2028}       code points from U+0100 up
 *
 * {@linkcode escapeControls} is for text shown as it is (`eve: hi`),
 * {@linkcode quote} for text shown as a string in quotes (`"SEND_DATE\n"`).
 * Where only a person reads the text (the chat window), escapeControls may
 * leave one format character alone, U+200D (zero-width joiner), which glues
 * emoji such as 👨‍👩‍👧 together and cannot act on a terminal; a log keeps
 * it escaped, or `Ada` and `Ada` + U+200D would look like one name.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { escapeControls, quote } from "./printable.ts";
 * assert.equal(escapeControls("\x1b[2J25"), "\\x1b[2J25");
 * assert.equal(quote("SEND_DATE\n"), '"SEND_DATE\\n"');
 * ```
 *
 * @module
 */

/** Controls (C0, DEL, C1), format (U+202E), private use, lone surrogates, U+2028, U+2029. */
const UNPRINTABLE_CLASSES = String.raw`\p{Cc}\p{Cf}\p{Co}\p{Cs}\p{Zl}\p{Zp}`;
const UNPRINTABLE = new RegExp(`[${UNPRINTABLE_CLASSES}]`, "gu");
/** The same but U+200D, the joiner inside emoji. */
const UNPRINTABLE_BUT_JOINER = new RegExp(
  String.raw`(?!\u200d)[${UNPRINTABLE_CLASSES}]`,
  "gu",
);
/** The same, and the two characters that would make a quoted string ambiguous. */
const UNPRINTABLE_OR_QUOTING = new RegExp(
  String.raw`[${UNPRINTABLE_CLASSES}\\"]`,
  "gu",
);

const NAMED: Record<string, string> = {
  "\n": "\\n",
  "\r": "\\r",
  "\t": "\\t",
  "\\": "\\\\",
  '"': '\\"',
};

/**
 * `text` as it is, every character that could act on a terminal escaped
 * (with `keepJoiner`, U+200D is left as it is: see the module notes).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { escapeControls } from "./printable.ts";
 * assert.equal(escapeControls("eve: \x1b[2Jhi"), "eve: \\x1b[2Jhi");
 * assert.equal(escapeControls("C:\\Users"), "C:\\Users"); // as typed
 * assert.equal(escapeControls("👩\u200d💻"), "👩\\u{200d}💻");
 * assert.equal(escapeControls("👩\u200d💻", { keepJoiner: true }), "👩\u200d💻");
 * ```
 */
export function escapeControls(
  text: string,
  options: { keepJoiner?: boolean } = {},
): string {
  return text.replace(
    options.keepJoiner ? UNPRINTABLE_BUT_JOINER : UNPRINTABLE,
    escape,
  );
}

/**
 * `text` as a quoted string: what {@linkcode escapeControls} escapes, and
 * `\` and `"` too.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { quote } from "./printable.ts";
 * assert.equal(quote("2 + 2"), '"2 + 2"');
 * assert.equal(quote('a\\b "c"\u202e'), String.raw`"a\\b \"c\"\u{202e}"`);
 * ```
 */
export function quote(text: string): string {
  return `"${text.replace(UNPRINTABLE_OR_QUOTING, escape)}"`;
}

/** `\n`, `\\`, `\"`; `\x1b` below U+0100; `\u{202e}` from there up. */
function escape(c: string): string {
  const code = c.codePointAt(0)!;
  return NAMED[c] ??
    (code < 0x100
      ? `\\x${code.toString(16).padStart(2, "0")}`
      : `\\u{${code.toString(16)}}`);
}
