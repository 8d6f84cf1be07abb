/**
 * Calculator requests with their expected answers, computed independently
 * of any server: operands are integers or short decimals, results are
 * worked out in scaled integer arithmetic and written as the contract
 * (3.4) prints them, without trailing zeros. No result has more than 10
 * significant digits and no case subtracts inexact decimals, so a server's
 * rounding error always vanishes in the contract's rounding to 15 digits.
 *
 * ```
 * C: 4173 + -2210        S: 1963
 * C: 12--4               S: 16
 * C: -.7 + -3.5          S: -4.2
 * C: -1387 / 8           S: -173.375
 * C: 2e3 * 7             S: 14000
 * C: 5 / 0               S: ERROR division by zero
 * ```
 *
 * Not a script: bench/calc_load.ts imports it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { calcCases } from "./calc_cases.ts";
 * const [first] = calcCases(1, 1);
 * assert(typeof first.request === "string" && typeof first.answer === "string");
 * ```
 *
 * @module
 */

import { mulberry32 } from "./random.ts";

/** One request line and the one answer line it must get. */
export interface CalcCase {
  request: string;
  answer: string;
}

/** Every `DIVIDE_BY_ZERO_EVERY`-th request divides by zero. */
const DIVIDE_BY_ZERO_EVERY = 50;

/**
 * `count` requests for session `seed`: the same seed gives the same list,
 * so a failure can be replayed.
 */
export function calcCases(seed: number, count: number): CalcCase[] {
  const random = mulberry32(seed);
  const int = (lo: number, hi: number) =>
    lo + Math.floor(random() * (hi - lo + 1));
  const nonZero = (lo: number, hi: number) => {
    const n = int(lo, hi);
    return n === 0 ? 1 : n;
  };
  const cases: CalcCase[] = [];
  for (let k = 0; k < count; k++) {
    if (k % DIVIDE_BY_ZERO_EVERY === DIVIDE_BY_ZERO_EVERY - 1) {
      cases.push({
        request: `${int(-99, 99)} / 0`,
        answer: "ERROR division by zero",
      });
      continue;
    }
    cases.push(pickCase(k % 8, int, nonZero));
  }
  return cases;
}

function pickCase(
  kind: number,
  int: (lo: number, hi: number) => number,
  nonZero: (lo: number, hi: number) => number,
): CalcCase {
  switch (kind) {
    case 0: {
      const a = int(-9999, 9999), b = int(-9999, 9999);
      return { request: `${a} + ${b}`, answer: decimal(a + b, 0) };
    }
    case 1: { // no spaces, and "--" when b is negative
      const a = int(-9999, 9999), b = int(-9999, 9999);
      return { request: `${a}-${b}`, answer: decimal(a - b, 0) };
    }
    case 2: { // no zero operand: 0 * -5 is -0, which the contract leaves open
      const a = nonZero(-999, 999), b = nonZero(-999, 999);
      return { request: `${a} * ${b}`, answer: decimal(a * b, 0) };
    }
    case 3: { // x / 8 is exact in binary: x * 125 thousandths
      const x = nonZero(-99999, 99999);
      return { request: `${x} / 8`, answer: decimal(x * 125, 3) };
    }
    case 4: { // tenths of one sign: 0.1 + 0.2 is 0.30000000000000004 before rounding
      // (mixed signs would cancel: -83.5 + 92.9 is 9.40000000000001 even after it)
      const sign = int(0, 1) ? -1 : 1;
      const a = sign * int(0, 9999), b = sign * int(0, 9999);
      return {
        request: `${short(decimal(a, 1))} + ${decimal(b, 1)}`,
        answer: decimal(a + b, 1),
      };
    }
    case 5: { // non-negative: languages disagree on the sign of a negative remainder
      const a = int(0, 99999), b = int(1, 999);
      return { request: `${a} % ${b}`, answer: decimal(a % b, 0) };
    }
    case 6: {
      const b = int(1, 99), e = int(0, 3);
      return { request: `${b}^${e}`, answer: decimal(b ** e, 0) };
    }
    default: { // exponent notation
      const m = int(1, 9), e = int(0, 3), c = int(1, 99);
      return {
        request: `${m}e${e} * ${c}`,
        answer: decimal(m * 10 ** e * c, 0),
      };
    }
  }
}

/**
 * The integer `n` scaled down by 10^`scale`, written without trailing
 * zeros: `decimal(-1250, 3)` is `-1.25`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decimal } from "./calc_cases.ts";
 * assert(decimal(-1250, 3) === "-1.25" && decimal(30, 1) === "3");
 * ```
 */
export function decimal(n: number, scale: number): string {
  const digits = String(Math.abs(n)).padStart(scale + 1, "0");
  const whole = digits.slice(0, digits.length - scale);
  const fraction = digits.slice(digits.length - scale).replace(/0+$/, "");
  return (n < 0 ? "-" : "") + whole + (fraction ? `.${fraction}` : "");
}

/** `0.5` as `.5` and `-0.5` as `-.5` (the contract allows both). */
function short(number: string): string {
  return number.replace(/^(-?)0\./, "$1.");
}
