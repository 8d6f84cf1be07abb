/**
 * The calculator's expressions (tcp/README.md, Q6): {@linkcode parseExpression}
 * reads `<number> <op> <number>`, {@linkcode evaluate} computes it, and
 * {@linkcode formatNumber} prints the result. The client and the server both
 * use this file, so the client refuses exactly what the server would refuse.
 *
 * ```
 * C: 12 + 13       S: 25
 * C: 4.5 / -6      S: -0.75
 * C: 3--4          S: 7
 * C: 0.1 + 0.2     S: 0.3
 * C: 12(10         S: ERROR invalid expression, expected <number> <op> <number>
 * C: 1 / 0         S: ERROR division by zero
 * C: 1e308 * 10    S: ERROR result out of range
 * ```
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { answerExpression } from "./expression.ts";
 * assert(answerExpression("4.5 / -6") === "-0.75");
 * assert(answerExpression("1 / 0") === "ERROR division by zero");
 * ```
 *
 * @module
 */

/** The six operators; `^` is power. */
export type Operator = "+" | "-" | "*" | "/" | "%" | "^";

/** A parsed `<number> <op> <number>`. */
export interface Expression {
  left: number;
  operator: Operator;
  right: number;
}

/** Why an expression has no answer (the text after `ERROR ` on the wire). */
export type CalcError =
  | "invalid expression"
  | "division by zero"
  | "result out of range";

/** What {@linkcode evaluate} returns: a finite value, or why there is none. */
export type Outcome =
  | { ok: true; value: number }
  | { ok: false; error: CalcError };

// One number: optional sign, digits with an optional point (`12`, `5.`,
// `-3.5`) or a point and digits (`.5`), optional exponent (`2e3`, `1E-7`).
// `[0-9]`, not `\d` with the u flag: only ASCII digits count.
const NUMBER = String
  .raw`[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?`;
const NUMBER_PATTERN = new RegExp(`^${NUMBER}$`);
// Number, operator, number; spaces or tabs around the operator are optional
// (`3--4` is 3 minus -4). The line has been trimmed before this is applied.
const EXPRESSION_PATTERN = new RegExp(
  String.raw`^(${NUMBER})[ \t]*([-+*/%^])[ \t]*(${NUMBER})$`,
);

// The white space trimmed from both ends of a line: what Python's
// str.strip() removes (Unicode White_Space plus U+001C-U+001F), so our
// answers match the original lab's Python calculator byte for byte.
const WHITESPACE =
  // deno-lint-ignore no-control-regex -- U+001C-U+001F are meant
  /[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/;

const DESCRIPTIONS: Record<CalcError, string> = {
  "invalid expression": "invalid expression, expected <number> <op> <number>",
  "division by zero": "division by zero",
  "result out of range": "result out of range",
};

/**
 * The answer line to one expression line, as the server sends it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { answerExpression } from "./expression.ts";
 * assert(answerExpression("12 + 13") === "25");
 * assert(answerExpression("12(10").startsWith("ERROR invalid expression"));
 * ```
 */
export function answerExpression(line: string): string {
  const expression = parseExpression(line);
  if (expression === undefined) return errorAnswer("invalid expression");
  const outcome = evaluate(expression);
  return outcome.ok ? formatNumber(outcome.value) : errorAnswer(outcome.error);
}

/**
 * The wire form of an error: `ERROR division by zero`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { errorAnswer } from "./expression.ts";
 * assert(errorAnswer("division by zero") === "ERROR division by zero");
 * ```
 */
export function errorAnswer(error: CalcError): string {
  return `ERROR ${DESCRIPTIONS[error]}`;
}

/**
 * Parse `<number> <op> <number>`, or `undefined` when `text` is anything
 * else. White space around the line is ignored. Never throws.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseExpression } from "./expression.ts";
 * const e = parseExpression(" 3--4 ");
 * assert(e?.left === 3 && e.operator === "-" && e.right === -4);
 * assert(parseExpression("1 + 2 + 3") === undefined);
 * ```
 */
export function parseExpression(text: string): Expression | undefined {
  const match = EXPRESSION_PATTERN.exec(trimWhitespace(text));
  if (match === null) return undefined;
  return {
    left: Number(match[1]),
    operator: match[2] as Operator,
    right: Number(match[3]),
  };
}

/**
 * One number as the grammar writes it (`-3.5`, `.5`, `2e3`, `+4`, `5.`), or
 * `undefined`. No white space, no `Infinity`, no hex, no `_`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseNumber } from "./expression.ts";
 * assert(parseNumber("-.5e1") === -5);
 * assert(parseNumber("0x10") === undefined);
 * ```
 */
export function parseNumber(text: string): number | undefined {
  return NUMBER_PATTERN.test(text) ? Number(text) : undefined;
}

/**
 * Compute an expression; the value is rounded to 15 significant digits
 * (see {@linkcode round15}). `/` or `%` by zero is `division by zero`; a
 * result that is not a finite number is `result out of range`. `%` keeps the
 * sign of the dividend (`-7 % 3` is `-1`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { evaluate } from "./expression.ts";
 * const r = evaluate({ left: 2, operator: "^", right: 10 });
 * assert(r.ok && r.value === 1024);
 * ```
 */
export function evaluate({ left, operator, right }: Expression): Outcome {
  if ((operator === "/" || operator === "%") && right === 0) {
    return { ok: false, error: "division by zero" };
  }
  const value = round15(compute(left, operator, right));
  return Number.isFinite(value)
    ? { ok: true, value }
    : { ok: false, error: "result out of range" };
}

function compute(a: number, operator: Operator, b: number): number {
  switch (operator) {
    case "+":
      return a + b;
    case "-":
      return a - b;
    case "*":
      return a * b;
    case "/":
      return a / b;
    case "%":
      return a % b;
    case "^":
      return power(a, b);
  }
}

/** `a ** b`, except (+-1)^(+-Infinity) is 1 as in C and Python (JS: NaN). */
function power(a: number, b: number): number {
  return Math.abs(a) === 1 && !Number.isFinite(b) ? 1 : a ** b;
}

/**
 * A number as the answer prints it: rounded to 15 significant digits, no
 * trailing zeros, `-0` as `0`, very large or small ones with an exponent
 * (`1e+21`, `1e-7`), which the grammar reads back.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatNumber } from "./expression.ts";
 * assert(formatNumber(0.1 + 0.2) === "0.3");
 * assert(formatNumber(25) === "25");
 * ```
 */
export function formatNumber(value: number): string {
  return String(round15(value));
}

/**
 * `x` rounded to 15 significant digits, an exact tie to the even digit as C's
 * `%.15g` does (`toPrecision` alone rounds a tie away from zero:
 * 1234567890123445 would become ...345, `%.15g` gives ...344). Non-finite
 * values are returned as they are.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { round15 } from "./expression.ts";
 * assert(round15(0.1 + 0.2) === 0.3);
 * assert(round15(1234567890123445) === 1234567890123440);
 * ```
 */
export function round15(x: number): number {
  if (!Number.isFinite(x)) return x;
  // Most answers are whole numbers of 15 digits or fewer: nothing to round
  // (but -0 prints as 0, as the rounding below would make it).
  if (Number.isInteger(x) && Math.abs(x) < 1e15) return x === 0 ? 0 : x;
  const nearest = Number(x.toPrecision(15));
  // 16 significant digits; a tie can only be one whose 16th digit is 5.
  const [digits16, exponent] = x.toExponential(15).split("e");
  if (!digits16.endsWith("5") || !isExactlySixteenDigits(x)) return nearest;
  const towardZero = digits16.slice(0, -1);
  const isEven = Number(towardZero.at(-1)) % 2 === 0;
  return isEven ? Number(`${towardZero}e${exponent}`) : nearest;
}

/** Whether the exact decimal value of `x` has exactly 16 significant digits. */
function isExactlySixteenDigits(x: number): boolean {
  // |x| = scaled / 2^k with scaled an integer; doubling a double is exact.
  let scaled = Math.abs(x);
  let k = 0;
  while (!Number.isInteger(scaled)) {
    scaled *= 2;
    k++;
  }
  // scaled / 2^k = scaled * 5^k / 10^k: the digits are those of scaled * 5^k.
  const digits = (BigInt(scaled) * 5n ** BigInt(k)).toString();
  return digits.replace(/0+$/, "").length === 16;
}

/**
 * `text` without the white space at both ends (see `WHITESPACE` above: the
 * same characters as Python's `str.strip()`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { trimWhitespace } from "./expression.ts";
 * assert(trimWhitespace("\t Ada \r") === "Ada");
 * ```
 */
export function trimWhitespace(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && WHITESPACE.test(text[start])) start++;
  while (end > start && WHITESPACE.test(text[end - 1])) end--;
  return start === 0 && end === text.length ? text : text.slice(start, end);
}
