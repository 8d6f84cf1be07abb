/**
 * lib/printable.ts: how text from the network is printed, unquoted
 * (escapeControls) and quoted (quote), one notation for both.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { escapeControls, quote } from "../lib/printable.ts";

/** What must never reach a terminal raw. */
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Co}\p{Cs}\p{Zl}\p{Zp}]/u;

Deno.test("escapeControls() and quote() escape what could act on a terminal", async (t) => {
  // [what, text, escapeControls(text), quote(text)]
  const table: [string, string, string, string][] = [
    ["plain text", "12 + 13", "12 + 13", `"12 + 13"`],
    ["an emoji and accents", "é 👋 ok", "é 👋 ok", `"é 👋 ok"`],
    [
      "U+200D joining emoji (kept only when asked: below)",
      "👨\u200d👩\u200d👧",
      String.raw`👨\u{200d}👩\u{200d}👧`,
      String.raw`"👨\u{200d}👩\u{200d}👧"`,
    ],
    ["ESC", "a\x1b[2Jb", String.raw`a\x1b[2Jb`, String.raw`"a\x1b[2Jb"`],
    ["BEL", "\x07", String.raw`\x07`, String.raw`"\x07"`],
    ["NUL", "\x00", String.raw`\x00`, String.raw`"\x00"`],
    ["DEL", "\x7f", String.raw`\x7f`, String.raw`"\x7f"`],
    ["C1 (CSI)", "\x9b31m", String.raw`\x9b31m`, String.raw`"\x9b31m"`],
    ["C1 (NEL)", "\x85", String.raw`\x85`, String.raw`"\x85"`],
    [
      "U+202E (right-to-left override)",
      "evil \u202etxt.exe",
      String.raw`evil \u{202e}txt.exe`,
      String.raw`"evil \u{202e}txt.exe"`,
    ],
    [
      "U+200B (zero-width space)",
      "\u200b",
      String.raw`\u{200b}`,
      String.raw`"\u{200b}"`,
    ],
    [
      "U+2028 (line separator)",
      "a\u2028b",
      String.raw`a\u{2028}b`,
      String.raw`"a\u{2028}b"`,
    ],
    [
      "U+2029 (paragraph separator)",
      "\u2029",
      String.raw`\u{2029}`,
      String.raw`"\u{2029}"`,
    ],
    [
      "a lone surrogate",
      "a\ud800b",
      String.raw`a\u{d800}b`,
      String.raw`"a\u{d800}b"`,
    ],
    [
      "a private-use character",
      "\ue000",
      String.raw`\u{e000}`,
      String.raw`"\u{e000}"`,
    ],
    [
      "a private-use character past U+FFFF",
      "\u{f0000}",
      String.raw`\u{f0000}`,
      String.raw`"\u{f0000}"`,
    ],
    [
      "a tag character (invisible text)",
      "hi\u{e0041}",
      String.raw`hi\u{e0041}`,
      String.raw`"hi\u{e0041}"`,
    ],
    [
      "\\n, \\r and \\t by name",
      "a\nb\r\tc",
      String.raw`a\nb\r\tc`,
      String.raw`"a\nb\r\tc"`,
    ],
    [
      "a backslash (quote only)",
      "C:\\Users",
      String.raw`C:\Users`,
      String.raw`"C:\\Users"`,
    ],
    [
      "a double quote (quote only)",
      'say "hi"',
      'say "hi"',
      String.raw`"say \"hi\""`,
    ],
  ];
  for (const [what, text, unquoted, quoted] of table) {
    await t.step(what, () => {
      assert.equal(escapeControls(text), unquoted, "escapeControls()");
      assert.equal(quote(text), quoted, "quote()");
    });
  }
});

/** Any UTF-16 string, lone surrogates included. */
const anyText = fc.string({
  unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
});

Deno.test("property: nothing unprintable is left, in either form", () => {
  fc.assert(fc.property(anyText, (text) => {
    assert.doesNotMatch(escapeControls(text), UNPRINTABLE);
    assert.doesNotMatch(quote(text), UNPRINTABLE);
  }));
});

Deno.test("property: quote() reads back as a JS string literal of the text", () => {
  // So the quoted form is unambiguous: no two texts are shown the same way.
  fc.assert(fc.property(anyText, (text) => {
    assert.equal(new Function(`return ${quote(text)};`)(), text);
  }));
});

Deno.test("escapeControls(text, { keepJoiner: true }) leaves U+200D and only that", async (t) => {
  const keep = (text: string) => escapeControls(text, { keepJoiner: true });
  await t.step("an emoji family stays whole (the chat window)", () => {
    assert.equal(keep("eve: 👨\u200d👩\u200d👧"), "eve: 👨\u200d👩\u200d👧");
  });
  await t.step("everything else is escaped as without it", () => {
    fc.assert(fc.property(anyText, (text) => {
      const withoutJoiners = text.replaceAll("\u200d", "");
      assert.equal(keep(withoutJoiners), escapeControls(withoutJoiners));
    }));
  });
});
