/**
 * The tests' tiny terminal (tests/terminal_screen.ts) against what xterm
 * and tmux do with the same output, so that tests/chat_window_test.ts can
 * trust what it reads from it.
 *
 * @module
 */

import { deepStrictEqual, throws } from "node:assert";
import { TerminalScreen } from "./terminal_screen.ts";

/** The rows of a 4x3 screen after `output`, and where the cursor is. */
function after(output: string[]): { rows: string[]; at: [number, number] } {
  const screen = new TerminalScreen(4, 3);
  for (const part of output) screen.write(part);
  return { rows: screen.text(), at: [screen.row, screen.col] };
}

Deno.test("a row filled exactly wraps only when the next character comes", () => {
  deepStrictEqual(after(["abcd"]), { rows: ["abcd", "", ""], at: [0, 3] });
  deepStrictEqual(after(["abcde"]), { rows: ["abcd", "e", ""], at: [1, 1] });
  deepStrictEqual(after(["abcd\r\n"]), { rows: ["abcd", "", ""], at: [1, 0] });
});

Deno.test("a wide character takes two columns, and the next row if one is left", () => {
  deepStrictEqual(after(["漢字"]), { rows: ["漢字", "", ""], at: [0, 3] });
  deepStrictEqual(after(["a漢字"]), { rows: ["a漢", "字", ""], at: [1, 2] });
});

Deno.test("a line feed on the bottom row scrolls the screen up", () => {
  deepStrictEqual(after(["1\r\n2\r\n3\r\n4"]), {
    rows: ["2", "3", "4"],
    at: [2, 1],
  });
  deepStrictEqual(after(["abcdefghijklm"]), {
    rows: ["efgh", "ijkl", "m"],
    at: [2, 1],
  });
});

Deno.test("CSI A, B, C, D, G move the cursor; K and J erase", () => {
  const typed = "> abcde"; // two rows, the cursor after the e
  deepStrictEqual(after([typed, "\x1b[1A\x1b[1G\x1b[0Jhi"]), {
    rows: ["hi", "", ""],
    at: [0, 2],
  });
  deepStrictEqual(after([typed, "\x1b[1A\x1b[3G\x1b[K"]), {
    rows: [">", "cde", ""],
    at: [0, 2],
  });
  deepStrictEqual(after([typed, "\x1b[2D\x1b[1A\x1b[1C\x1b[2K\x1b[1Bx"]), {
    rows: ["", "cdx", ""],
    at: [1, 3],
  });
});

Deno.test("a sequence split across writes; anything unknown throws", () => {
  deepStrictEqual(after(["ab\x1b", "[1", "Gc"]), {
    rows: ["cb", "", ""],
    at: [0, 1],
  });
  throws(() => after(["\x1b[?25l"]), /unknown/);
  throws(() => after(["\x07"]), /unknown/);
  throws(() => after(["\x1b[1S"]), /unknown/);
});
