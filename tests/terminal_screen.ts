/**
 * A tiny terminal for the tests: feed it what a program wrote to its
 * terminal, read back the rows a person would see. It knows only what
 * node:readline and the chat window write (text, CR, LF, and cursor
 * movement and erasing by CSI sequences), and throws on anything else, so a
 * test never passes by ignoring output it does not understand.
 *
 * Like xterm, it wraps at the right edge only when the next character
 * comes (a row filled exactly keeps the cursor on it), moves a wide
 * character that does not fit the last column to the next row, and
 * scrolls up when a line feed leaves the bottom row.
 *
 * ```ts
 * const screen = new TerminalScreen(10, 3);
 * screen.write("> abcdefghij\x1b[1A\x1b[1G\x1b[0Jbob: hi\r\n");
 * screen.text(); // ["bob: hi", "", ""]
 * ```
 *
 * @module
 */

/** A cell holding the right half of the wide character before it. */
const RIGHT_HALF = "";

export class TerminalScreen {
  readonly cols: number;
  readonly rowCount: number;
  row = 0;
  col = 0;
  #cells: string[][];
  /** The last column was just written: the next character wraps first. */
  #wrapNext = false;
  /** The start of an escape sequence split across writes. */
  #pending = "";

  constructor(cols: number, rows: number) {
    this.cols = cols;
    this.rowCount = rows;
    this.#cells = Array.from({ length: rows }, () => this.#blankRow());
  }

  /** Every row as text, trailing blanks removed. */
  text(): string[] {
    return this.#cells.map((cells) => cells.join("").trimEnd());
  }

  /** Apply output written to the terminal (it may end mid-sequence). */
  write(output: string): void {
    const text = this.#pending + output;
    this.#pending = "";
    let i = 0;
    while (i < text.length) {
      if (text[i] === "\x1b") {
        // ESC [ numbers final: a CSI sequence, the only kind expected.
        const rest = text.slice(i + 1);
        const csi = /^\[([0-9;]*)([@-~])/.exec(rest);
        if (!csi) {
          if (/^(\[[0-9;]*)?$/.test(rest)) {
            this.#pending = text.slice(i); // the rest comes in the next write
            return;
          }
          throw new Error(`unknown escape ${JSON.stringify(rest.slice(0, 8))}`);
        }
        this.#control(
          csi[2],
          csi[1] === "" ? [] : csi[1].split(";").map(Number),
        );
        i += 1 + csi[0].length;
        continue;
      }
      const char = String.fromCodePoint(text.codePointAt(i)!);
      i += char.length;
      if (char === "\r") this.#moveTo(this.row, 0);
      else if (char === "\n") this.#lineFeed();
      else if (/\p{Cc}/u.test(char)) {
        throw new Error(`unknown control ${JSON.stringify(char)}`);
      } else this.#print(char);
    }
  }

  #print(char: string): void {
    const width = isWide(char) ? 2 : 1;
    if (this.#wrapNext || this.col + width > this.cols) {
      this.#lineFeed();
      this.col = 0;
    }
    this.#cells[this.row][this.col] = char;
    if (width === 2) this.#cells[this.row][this.col + 1] = RIGHT_HALF;
    this.col += width;
    this.#wrapNext = this.col === this.cols;
    if (this.#wrapNext) this.col = this.cols - 1;
  }

  #lineFeed(): void {
    this.#wrapNext = false;
    if (this.row < this.rowCount - 1) return void this.row++;
    this.#cells.shift();
    this.#cells.push(this.#blankRow());
  }

  /** CSI `final` with numeric `args` (`\x1b[2A`: "A", [2]). */
  #control(final: string, args: number[]): void {
    const n = args[0] || 1;
    const mode = args[0] ?? 0;
    switch (final) {
      case "A": // up
        return this.#moveTo(this.row - n, this.col);
      case "B": // down
        return this.#moveTo(this.row + n, this.col);
      case "C": // right
        return this.#moveTo(this.row, this.col + n);
      case "D": // left
        return this.#moveTo(this.row, this.col - n);
      case "G": // to column n
        return this.#moveTo(this.row, n - 1);
      case "K": // erase in the row: 0 to its end, 1 from its start, 2 all
        return this.#erase(
          this.row,
          mode === 0 ? this.col : 0,
          mode === 1 ? this.col + 1 : this.cols,
        );
      case "J": // erase in the screen: 0 from the cursor down
        if (mode !== 0) break;
        this.#erase(this.row, this.col, this.cols);
        for (let row = this.row + 1; row < this.rowCount; row++) {
          this.#erase(row, 0, this.cols);
        }
        return;
    }
    throw new Error(`unknown sequence ESC [ ${args.join(";")} ${final}`);
  }

  #moveTo(row: number, col: number): void {
    this.row = Math.max(0, Math.min(this.rowCount - 1, row));
    this.col = Math.max(0, Math.min(this.cols - 1, col));
    this.#wrapNext = false;
  }

  #erase(row: number, from: number, to: number): void {
    this.#cells[row].fill(" ", from, to);
  }

  #blankRow(): string[] {
    return Array(this.cols).fill(" ");
  }
}

/** East Asian wide characters and emoji: two columns (as readline counts). */
function isWide(char: string): boolean {
  const code = char.codePointAt(0)!;
  return (code >= 0x1100 && code <= 0x115f) ||
    (code >= 0x2e80 && code <= 0xa4cf) || (code >= 0xac00 && code <= 0xd7a3) ||
    (code >= 0xf900 && code <= 0xfaff) || (code >= 0xff00 && code <= 0xff60) ||
    (code >= 0x1f300 && code <= 0x1f64f) ||
    (code >= 0x1f900 && code <= 0x1f9ff) ||
    (code >= 0x20000 && code <= 0x3fffd);
}
