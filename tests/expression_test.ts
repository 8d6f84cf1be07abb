/**
 * The calculator's expressions (lib/expression.ts, CONTRACT 3.4) in memory:
 * the grammar, the answers, the errors and the 15-digit formatting, from
 * tables, and properties checked against a spec written here independently.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  answerExpression,
  evaluate,
  type Expression,
  formatNumber,
  type Operator,
  parseExpression,
  parseNumber,
  round15,
  trimWhitespace,
} from "../lib/expression.ts";

const INVALID = "ERROR invalid expression, expected <number> <op> <number>";

// The contract's grammar, written out again from its text: an optional sign,
// digits / digits. / digits.digits / .digits, an optional exponent; the
// operator between optional spaces or tabs; white space around the line
// (Python's str.strip() set, as the reference servers trim) ignored.
const D = "[0-9]+";
const SPEC_NUMBER =
  `([-+]?(?:${D}|${D}\\.|${D}\\.${D}|\\.${D})(?:[eE][-+]?${D})?)`;
const EDGE =
  "[\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*";
const SPEC = new RegExp(
  `^${EDGE}${SPEC_NUMBER}[ \\t]*([-+*/%^])[ \\t]*${SPEC_NUMBER}${EDGE}$`,
);

Deno.test("parseExpression accepts <number> <op> <number>", async (t) => {
  const table: [string, number, Operator, number][] = [
    // The contract's examples.
    ["12 + 42", 12, "+", 42],
    ["3.24 - 45", 3.24, "-", 45],
    ["4.5 / -6", 4.5, "/", -6],
    ["3--4", 3, "-", -4],
    ["12 + 13", 12, "+", 13],
    ["1 / 0", 1, "/", 0],
    // Number forms: signs, points, exponents.
    ["-3.5 * .5", -3.5, "*", 0.5],
    ["2e3 % +4", 2000, "%", 4],
    ["5. ^ 2", 5, "^", 2],
    ["1E-7+1e+2", 1e-7, "+", 100],
    ["-.5e1 - -5.e-1", -5, "-", -0.5],
    ["007 * 0.0", 7, "*", 0],
    ["1e999 + 1", Infinity, "+", 1],
    // Spaces and tabs around the operator, white space around the line.
    ["3 - -4", 3, "-", -4],
    [".5*2", 0.5, "*", 2],
    ["1\t+\t2", 1, "+", 2],
    ["1  +2", 1, "+", 2],
    ["  12 + 13 \t", 12, "+", 13],
    ["\u00a012 + 13\u3000", 12, "+", 13],
    ["12 + 13\r", 12, "+", 13],
    ["+1++2", 1, "+", 2],
    ["1-+2", 1, "-", 2],
    ["2^-1", 2, "^", -1],
  ];
  for (const [text, left, operator, right] of table) {
    await t.step(JSON.stringify(text), () => {
      assert.deepEqual(parseExpression(text), { left, operator, right });
    });
  }
});

Deno.test("parseExpression refuses anything else", async (t) => {
  const table = [
    "12(10",
    "1 + ",
    "+",
    "1 + 2 + 3",
    "1 2",
    "abc",
    "1e",
    "1e + 1",
    "--3 + 1",
    "1..2 + 1",
    "1 + 1..2",
    "0x10 + 1",
    "Infinity + 1",
    "1 + Infinity",
    "NaN",
    "NaN + 1",
    "1_000 + 1",
    "\u0661 + 1", // ARABIC-INDIC DIGIT ONE
    "\uff11 + 1", // FULLWIDTH DIGIT ONE
    "1 \u00a0+ 2", // no-break space is white space at the ends only
    "1 +\n2",
    "\ufeff12 + 13", // a BOM is not white space
    "",
    "   ",
    "q",
    "12",
    "12 +",
    "+ 12",
    "1 ** 2",
    "1 // 2",
    "1 x 2",
    "(1 + 2)",
    "1 + 2;",
    ". + 1",
    "1e5.5 + 1",
    "1 + 2 # comment",
    "1,5 + 2",
    "e5 + 1",
  ];
  for (const text of table) {
    await t.step(JSON.stringify(text), () => {
      assert.equal(parseExpression(text), undefined);
      assert.equal(answerExpression(text), INVALID);
    });
  }
});

Deno.test("answerExpression gives the contract's answers", async (t) => {
  const table: [string, string][] = [
    ["12 + 13", "25"],
    ["12 + 42", "54"],
    ["3.24 - 45", "-41.76"],
    ["4.5 / -6", "-0.75"],
    ["3--4", "7"],
    ["0.1 + 0.2", "0.3"],
    ["2 ^ 10", "1024"],
    ["2 ^ -1", "0.5"],
    ["2 ^ 0.5", "1.4142135623731"], // 1.41421356237310 without its trailing zero
    ["7 % 3", "1"],
    ["-7 % 3", "-1"], // the sign of the dividend
    ["7.5 % 2", "1.5"],
    ["1 / 3", "0.333333333333333"],
    ["2 / 3", "0.666666666666667"],
    ["-0 * 1", "0"], // no "-0"
    ["0 * -1", "0"],
    ["1e21 * 1", "1e+21"],
    ["1e-7 * 1", "1e-7"],
    ["123456789012345678 + 0", "123456789012346000"],
    ["1 ^ 1e999", "1"], // (+-1)^(+-Infinity) is 1, as C's pow
    ["-1 ^ -1e999", "1"],
    // Only +-1: any other base to an infinite power is 0 or out of range.
    ["0.5 ^ 1e999", "0"],
    ["2 ^ 1e999", "ERROR result out of range"],
    ["5 % 1e999", "5"],
    // Division or % by zero, however zero is written.
    ["1 / 0", "ERROR division by zero"],
    ["1 % 0", "ERROR division by zero"],
    ["0 / 0", "ERROR division by zero"],
    ["1 / -0", "ERROR division by zero"],
    ["1 / 0.0e5", "ERROR division by zero"],
    ["1e999 / 0", "ERROR division by zero"],
    // Not a finite number.
    ["1e308 * 10", "ERROR result out of range"],
    ["1e999 + 1", "ERROR result out of range"],
    ["1e999 - 1e999", "ERROR result out of range"],
    ["0 ^ -1", "ERROR result out of range"],
    ["-8 ^ 0.5", "ERROR result out of range"],
    ["10 ^ 400", "ERROR result out of range"],
    // Finite, but 15-digit rounding goes past the largest double.
    ["1.7976931348623157e308 + 1", "ERROR result out of range"],
  ];
  for (const [text, answer] of table) {
    await t.step(`${text} -> ${answer}`, () => {
      assert.equal(answerExpression(text), answer);
    });
  }
});

Deno.test("formatNumber rounds to 15 significant digits, ties to even", async (t) => {
  const table: [number, string][] = [
    [25, "25"],
    [0.1 + 0.2, "0.3"],
    [-0.75, "-0.75"],
    [100, "100"], // zeros before the point stay
    [1.5e-7, "1.5e-7"],
    [123456789.123456789, "123456789.123457"],
    [0.30000000000000004, "0.3"],
    // Exact ties at the 16th digit: to even, as printf's %.15g.
    [1234567890123445, "1234567890123440"],
    [1234567890123455, "1234567890123460"],
    [-1234567890123445, "-1234567890123440"],
    [123456789012344.5, "123456789012344"],
    [123456789012345.5, "123456789012346"],
    // Whole numbers past 16 digits, tied at the 16th: to even too.
    [12345678901234450, "12345678901234400"],
    [12345678901234550, "12345678901234600"],
    [1234567890123.125, "1234567890123.12"],
    // Near a tie, but not exactly one: to the nearest.
    [1234567890123.126, "1234567890123.13"],
    // The next double above the exact tie 1234567890123.125: its 16 digits
    // end in 5 too, but it is not a tie.
    [1234567890123.1252, "1234567890123.13"],
    // Exactly 16 digits, but not a tie: to the nearest, not toward zero.
    [1234567890123446, "1234567890123450"],
    [-0, "0"],
  ];
  for (const [value, text] of table) {
    await t.step(`${value} -> ${text}`, () => {
      assert.equal(formatNumber(value), text);
    });
  }
});

Deno.test("trimWhitespace trims what Python's str.strip() does", () => {
  assert.equal(
    trimWhitespace(
      " \t\r\n\v\f\x1c\x1f\x85\xa0\u2000\u3000Ada Lovelace \u2028",
    ),
    "Ada Lovelace",
  );
  assert.equal(trimWhitespace("\ufeffAda"), "\ufeffAda");
  // Zero-width space (U+200B), just past the U+2000-U+200A spaces: not one.
  assert.equal(trimWhitespace("\u200bAda\u200b"), "\u200bAda\u200b");
  assert.equal(trimWhitespace("\x00Ada\x07"), "\x00Ada\x07"); // control, not space
  assert.equal(trimWhitespace(""), "");
  assert.equal(trimWhitespace(" \t "), "");
});

const PIECES = [
  ..."0123456789+-*/%^.eE \t",
  "\u00a0",
  "\u3000",
  "\r",
  "\n",
  "x",
  "(",
  "_",
  "\u0661",
  "Infinity",
  "NaN",
  "0x",
  "\ufeff",
];

// A number as the grammar writes it: sign, digits and point, exponent.
const DIGITS = fc.stringMatching(/^[0-9]{1,4}$/);
const NUMBER = fc.tuple(
  fc.constantFrom("", "+", "-"),
  fc.oneof(
    DIGITS,
    DIGITS.map((d) => `${d}.`),
    fc.tuple(DIGITS, DIGITS).map(([a, b]) => `${a}.${b}`),
    DIGITS.map((d) => `.${d}`),
  ),
  fc.option(
    fc.tuple(fc.constantFrom("e", "E"), fc.constantFrom("", "+", "-"), DIGITS),
    { nil: undefined },
  ).map((exponent) => exponent?.join("") ?? ""),
).map((parts) => parts.join(""));
const SPACE = fc.stringMatching(/^[ \t]{0,2}$/);
const OPERATOR = fc.constantFrom<Operator>("+", "-", "*", "/", "%", "^");

/** Valid expressions, with the parts they are made of. */
const VALID = fc.tuple(NUMBER, SPACE, OPERATOR, SPACE, NUMBER);

/** Strings near the grammar: valid ones with one piece inserted or replaced, and strings of pieces. */
const NEAR_MISS = fc.oneof(
  fc.tuple(VALID, fc.nat(), fc.constantFrom(...PIECES), fc.boolean()).map(
    ([parts, at, piece, replace]) => {
      const text = parts.join("");
      const i = at % (text.length + 1);
      return text.slice(0, i) + piece + text.slice(replace ? i + 1 : i);
    },
  ),
  fc.string({ unit: fc.constantFrom(...PIECES), maxLength: 16 }),
);

Deno.test("parseExpression accepts exactly what the spec accepts", async (t) => {
  const agree = (text: string) => {
    const parsed = parseExpression(text);
    const spec = SPEC.exec(text);
    if (spec === null) {
      assert.equal(parsed, undefined, `accepted ${JSON.stringify(text)}`);
      return;
    }
    assert.deepEqual(parsed, {
      left: Number(spec[1]),
      operator: spec[2],
      right: Number(spec[3]),
    }, JSON.stringify(text));
  };

  await t.step("strings near the grammar", () => {
    fc.assert(fc.property(NEAR_MISS, agree), { numRuns: 5000 });
  });

  await t.step("any string", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 40 }), agree),
      {
        numRuns: 2000,
      },
    );
  });

  await t.step("valid expressions built from the grammar", () => {
    fc.assert(
      fc.property(VALID, ([a, s1, operator, s2, b]) => {
        const text = `${a}${s1}${operator}${s2}${b}`;
        assert.ok(SPEC.test(text), `spec refuses ${text}`);
        assert.deepEqual(parseExpression(text), {
          left: Number(a),
          operator,
          right: Number(b),
        });
      }),
      { numRuns: 2000 },
    );
  });

  await t.step("a long line is answered quickly (no regex blow-up)", () => {
    const started = performance.now();
    for (
      const text of [
        "1".repeat(1024),
        `1${" ".repeat(1022)}x`,
        `${"1".repeat(500)}e${"1".repeat(500)}+`,
      ]
    ) {
      assert.equal(parseExpression(text), undefined);
    }
    // Generous: a linear scan takes microseconds; a quadratic one, seconds.
    assert.ok(performance.now() - started < 500);
  });
});

Deno.test("a formatted number reads back as its 15-digit rounding", () => {
  fc.assert(
    fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (x) => {
      const text = formatNumber(x);
      const rounded = round15(x);
      if (!Number.isFinite(rounded)) return; // rounds past the largest double
      assert.equal(parseNumber(text), rounded, `${x} printed as ${text}`);
      assert.ok(
        text.replace(/e.*/, "").replace(/[-.]/g, "").replace(/^0+|0+$/g, "")
          .length <= 15,
        text,
      );
    }),
    { numRuns: 5000 },
  );
});

Deno.test("evaluate never throws and returns only finite values", () => {
  const operand = fc.oneof(
    fc.double(),
    fc.constantFrom(0, -0, 1, -1, Infinity, -Infinity),
  );
  fc.assert(
    fc.property(
      operand,
      fc.constantFrom<Operator>("+", "-", "*", "/", "%", "^"),
      operand,
      (left, operator, right) => {
        const expression: Expression = { left, operator, right };
        const outcome = evaluate(expression);
        if (outcome.ok) assert.ok(Number.isFinite(outcome.value));
        else if ((operator === "/" || operator === "%") && right === 0) {
          assert.equal(outcome.error, "division by zero");
        } else assert.equal(outcome.error, "result out of range");
      },
    ),
    { numRuns: 5000 },
  );
});

Deno.test("answerExpression never throws and answers with one line", () => {
  fc.assert(
    fc.property(fc.oneof(NEAR_MISS, fc.string({ unit: "binary" })), (text) => {
      const answer = answerExpression(text);
      assert.ok(!answer.includes("\n"));
      assert.ok(
        answer.startsWith("ERROR ") || parseNumber(answer) !== undefined,
        answer,
      );
    }),
    { numRuns: 3000 },
  );
});
