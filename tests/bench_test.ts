/**
 * The benchmark (bench/main.ts) as a correctness check: `deno task bench
 * --quick` runs every workload against our servers at tiny sizes, and every
 * message must arrive, every login succeed, every calculator answer be right
 * and every server stop cleanly. Speed is never checked here. Then the
 * arithmetic behind the figures (bench/stats.ts, bench/report.ts, the README
 * table of bench/compare_table.ts, bench/pool_paired.ts) with exact values,
 * and how bench/processes.ts starts, finds and stops a server.
 *
 * Run: deno test -A tests/bench_test.ts
 *
 * @module
 */

import assert from "node:assert/strict";
import { cpuUsage } from "node:process";
import { ROOT, running, RunningScript, runScript, within } from "./support.ts";
import denoJson from "../deno.json" with { type: "json" };
import { WORKLOADS } from "../bench/workloads.ts";
import {
  type Medians,
  pairedRatio,
  roundsBetter,
  sameServerTwice,
  table,
} from "../bench/compare_table.ts";
import { poolRounds } from "../bench/pool_paired.ts";
import { killAll, runTool, startServer } from "../bench/processes.ts";
import { formatTable, type RunResult } from "../bench/report.ts";
import { assertPerClientGrowth } from "./idle_figures.ts";
import {
  cpuMeter,
  cpuSeconds,
  openFilesLimit,
  percentile,
  procStat,
  round,
  rssKiB,
  Samples,
} from "../bench/stats.ts";

/** What bench/main.ts --json says about one run. */
interface Run {
  workload: string;
  server: string;
  command: string;
  /** The result field that is the headline figure (workloads.ts). */
  metric: string;
  ok: boolean;
  problems: string[];
  result: Record<string, number | string | null>;
  stop: { code: number | null; signal: string | null; lastLine: string } | null;
  server_pid: number | null;
}

const BENCH_FLAGS = ["--allow-all"];

async function bench(args: string[]) {
  const startedAt = performance.now();
  const { code, stdout, stderr } = await runScript("bench/main.ts", [
    "--quick",
    "--json",
    ...args,
  ], { denoFlags: BENCH_FLAGS, timeoutMs: 120_000 });
  const wallSeconds = (performance.now() - startedAt) / 1000;
  let runs: Run[] = [];
  try {
    runs = JSON.parse(stdout).runs;
  } catch {
    assert.fail(
      `no JSON from bench/main.ts (exit ${code}):\n${stdout}\n${stderr}`,
    );
  }
  return { code, runs, stderr, wallSeconds };
}

Deno.test("deno task bench --quick: every workload against our servers, nothing lost or wrong", async (t) => {
  const { code, runs, stderr, wallSeconds } = await bench([]);
  const byName = new Map(runs.map((r) => [r.workload, r]));

  await t.step(
    "exits 0 and reports every workload once, for our server",
    () => {
      assert.equal(code, 0, stderr);
      assert.deepEqual(
        runs.map((r) => r.workload),
        WORKLOADS.map((w) => w.name),
      );
      assert.ok(runs.every((r) => r.server === "ours" && r.ok), stderr);
    },
  );

  await t.step(
    "chat fan-out and paced runs deliver every message, in order",
    () => {
      for (const name of ["fanout", "fanout-wide", "paced"]) {
        const r = byName.get(name)!.result;
        assert.ok(Number(r.expected) > 0, name);
        assert.equal(r.received, r.expected, name);
        assert.equal(r.lost, 0, name);
        assert.equal(r.out_of_order, 0, name);
        assert.equal(typeof r.p99_ms, "number", name);
      }
    },
  );

  await t.step("connect storm and idle clients all log in", () => {
    for (const name of ["storm", "idle"]) {
      const r = byName.get(name)!.result;
      assert.ok(Number(r.clients) > 0);
      assert.equal(r.logins, r.clients, name);
      assert.equal(r.failures, 0, name);
    }
    assert.equal(typeof byName.get("idle")!.result.kib_per_client, "number");
  });

  await t.step("every calculator answer is right", () => {
    for (const name of ["calc-seq", "calc-pipe"]) {
      const r = byName.get(name)!.result;
      assert.ok(Number(r.expected_answers) > 0);
      assert.equal(r.answers, r.expected_answers, name);
      assert.equal(r.wrong, 0, name);
      assert.equal(r.sessions_ended, r.clients, name);
    }
  });

  await t.step("UDP requests are all answered, with a time", () => {
    const r = byName.get("udp")!.result;
    assert.ok(Number(r.answered) > 0);
    assert.equal(r.lost, 0);
    assert.equal(r.bad_answers, 0);
  });

  // What the table reads: each workload's headline figure (its `metric`)
  // as a number, the run's mode (a paced run paced, a pipelined one
  // pipelined), and `ops`, the count that CPU per operation divides by.
  await t.step(
    "each run reports its figure, its mode, and ops as its count",
    () => {
      const expected: Record<string, [string, string | null]> = {
        fanout: ["fanout", "received"],
        "fanout-wide": ["fanout", "received"],
        paced: ["paced", "received"],
        storm: ["storm", "logins"],
        idle: ["idle", null],
        "calc-seq": ["calc-sequential", "answers"],
        "calc-pipe": ["calc-pipelined", "answers"],
        udp: ["udp", "answered"],
      };
      for (const r of runs) {
        assert.equal(typeof r.result[r.metric], "number", r.workload);
        const [mode, count] = expected[r.workload];
        assert.equal(r.result.mode, mode, r.workload);
        if (count) assert.equal(r.result.ops, r.result[count], r.workload);
      }
    },
  );

  // Units and durations, without judging speed: every latency lies inside
  // its run's measured phase, which lies inside the whole bench's run
  // (rounding: 1 ms). The idle run's latencies are logins, inside login_s.
  await t.step(
    "latencies lie inside the measured phase, the phase inside the run",
    () => {
      for (const r of runs) {
        const phase = Number(
          r.workload === "idle" ? r.result.login_s : r.result.elapsed_s,
        );
        assert.ok(
          phase > 0 && phase < wallSeconds,
          `${r.workload}: ${phase} s`,
        );
        if (r.workload === "udp") continue; // its last answers come after the phase
        assert.ok(
          Number(r.result.max_ms) <= phase * 1000 + 1,
          `${r.workload}: max ${r.result.max_ms} ms in ${phase} s`,
        );
      }
    },
  );

  // The idle figures are the server's growth in memory per client, between
  // the readings the same JSON gives.
  await t.step(
    "idle: KiB per client is the growth of the server's memory over the logins",
    () => {
      const r = byName.get("idle")!.result;
      assertPerClientGrowth(r, Number(r.logins));
    },
  );

  // The JSON names the command that ran, and the figures measured on the
  // server's process: its pid reached the load tool (a missing --pid leaves
  // them null, and the table's memory and CPU columns empty).
  await t.step("each run names its server's command and measures it", () => {
    const { tasks } = denoJson;
    const ours: Record<string, string> = {
      chat: `${tasks["chat-server"]} --max-clients 20000`,
      calc: tasks["calc-server"],
      time: tasks["udp-time-server"],
    };
    for (const r of runs) {
      const kind = WORKLOADS.find((w) => w.name === r.workload)!.kind;
      assert.equal(r.command, ours[kind], r.workload);
      assert.equal(typeof r.result.server_rss_mb, "number", r.workload);
    }
  });

  await t.step(
    "every server exits 0 on SIGTERM and nothing is left running",
    () => {
      for (const r of runs) {
        assert.deepEqual(
          r.stop && [r.stop.code, r.stop.signal],
          [0, null],
          r.workload,
        );
        assert.match(r.stop!.lastLine, /server stopped$/, r.workload);
        assert.ok(
          r.server_pid && !running(r.server_pid),
          `${r.workload}: pid ${r.server_pid} still runs`,
        );
      }
    },
  );
});

/** A flag's value in a workload's `--quick` arguments. */
function quickFlag(workload: string, flag: string): number {
  const args = WORKLOADS.find((w) => w.name === workload)!.quickArgs;
  return Number(args[args.indexOf(flag) + 1]);
}

/**
 * Run `workload` against faulty servers (tests/faulty_servers.ts), one per
 * fault; each fault is `name` or `name ARG`. Every run must fail, and so
 * must the bench (exit 1). The runs, by fault name.
 */
async function benchFaults(
  workload: string,
  kind: "chat" | "calc" | "time",
  faults: string[],
): Promise<Map<string, Run>> {
  const script = `${ROOT}tests/faulty_servers.ts`;
  const names = faults.map((fault) => fault.split(" ")[0]);
  const { code, runs, stderr } = await bench([
    "--workloads",
    workload,
    "--servers",
    names.join(","),
    ...faults.flatMap((fault, i) => [
      "--server",
      `${kind}:${
        names[i]
      }=deno run --allow-net --unstable-net ${script} ${fault}`,
    ]),
  ]);
  assert.equal(code, 1, stderr);
  assert.deepEqual(runs.map((r) => r.server), names);
  for (const r of runs) assert.equal(r.ok, false, `${r.server}: ${stderr}`);
  return new Map(runs.map((r) => [r.server, r]));
}

Deno.test("deno task bench --quick reports what a faulty server gets wrong", async (t) => {
  await t.step("chat: a message out of order, a message lost", async () => {
    const senders = quickFlag("fanout", "--senders");
    const messages = quickFlag("fanout", "--messages");
    const fanout = quickFlag("fanout", "--clients") + senders - 1;
    // The last message of sender 0 never arrives: no later one shows a gap.
    const runs = await benchFaults("fanout", "chat", [
      "chat-swap",
      `chat-drop @0:${messages - 1}:`,
    ]);
    const swap = runs.get("chat-swap")!.result;
    assert.ok(Number(swap.out_of_order) > 0);
    assert.equal(swap.lost, 0);
    const drop = runs.get("chat-drop")!.result;
    assert.equal(drop.lost, fanout); // to everyone but sender 0
    assert.equal(drop.out_of_order, 0);
    assert.equal(drop.sent, senders * messages);
    assert.equal(drop.expected, senders * messages * fanout);
  });

  await t.step("chat: QUIT without BYE, idle clients dropped", async () => {
    const storm = await benchFaults("storm", "chat", ["chat-no-bye"]);
    const noBye = storm.get("chat-no-bye")!.result;
    assert.equal(noBye.failures, quickFlag("storm", "--clients"));
    // No session completed: no logins, and none counted in the rate.
    assert.equal(noBye.logins, 0);
    assert.equal(noBye.logins_per_s, 0);
    const idle = await benchFaults("idle", "chat", ["chat-close-quiet"]);
    assert.equal(
      idle.get("chat-close-quiet")!.result.dropped,
      quickFlag("idle", "--clients"),
    );
  });

  await t.step(
    "calculator: a wrong answer, a session without goodbye, an unclean stop",
    async () => {
      const runs = await benchFaults("calc-seq", "calc", [
        "calc-div-zero",
        "calc-no-goodbye",
        "calc-exit-1",
      ]);
      const wrong = runs.get("calc-div-zero")!;
      assert.ok(Number(wrong.result.wrong) > 0);
      assert.match(wrong.problems.join(" "), /wrong answers/);
      assert.equal(
        runs.get("calc-no-goodbye")!.result.failures,
        quickFlag("calc-seq", "--clients"),
      );
      const exit1 = runs.get("calc-exit-1")!;
      assert.deepEqual(exit1.stop && [exit1.stop.code, exit1.stop.signal], [
        1,
        null,
      ]);
      assert.match(exit1.problems.join(" "), /did not exit 0 on SIGTERM/);
    },
  );

  await t.step("UDP: answers of the wrong shape, requests lost", async () => {
    const runs = await benchFaults("udp", "time", ["time-error", "time-drop"]);
    const error = runs.get("time-error")!.result;
    assert.ok(Number(error.answered) > 0);
    assert.equal(error.bad_answers, error.answered);
    assert.ok(Number(runs.get("time-drop")!.result.lost) > 0);
  });

  // The README: "every server exited 0 on SIGTERM". One that ignores it is
  // killed after the 5 s grace, and that is a failure too.
  await t.step("a server that ignores SIGTERM", async () => {
    const script = `${ROOT}tests/stubborn_server.ts`;
    const { code, runs, stderr } = await bench([
      "--workloads",
      "udp",
      "--servers",
      "stubborn",
      "--server",
      `time:stubborn=deno run --allow-net --unstable-net ${script}`,
    ]);
    assert.equal(code, 1, stderr);
    const [stubborn] = runs;
    assert.deepEqual(
      stubborn.stop && [stubborn.stop.code, stubborn.stop.signal],
      [
        null,
        null,
      ],
    );
    assert.match(
      stubborn.problems.join(" "),
      /did not exit 0 on SIGTERM \(code null, signal null\)/,
    );
  });
});

Deno.test("the README table counts, round by round, where ours beat the reference", () => {
  const runs = (...xs: number[]) => xs.map((x) => ({ rate: x, p99: x }));
  const bySrv = {
    ours: { runs: runs(10, 20, 30) },
    node: { runs: runs(15, 15, 30) },
  };
  // Higher is better: round 2 only (a tie is not better).
  assert.equal(
    roundsBetter({ metric: "rate", reference: "node" }, bySrv),
    "1 of 3",
  );
  // Lower is better: round 1 only.
  assert.equal(
    roundsBetter(
      { metric: "p99", reference: "node", lowerIsBetter: true },
      bySrv,
    ),
    "1 of 3",
  );
  assert.equal(roundsBetter({ metric: "rate", reference: "py" }, bySrv), "-");
});

Deno.test("the README table pairs ours with the reference round by round", () => {
  const runs = (...xs: number[]) => xs.map((x) => ({ rate: x }));
  // Ratios 0.5, 1 and 2: their geometric mean is 1, where the medians (2
  // over 2) agree but the mean of the ratios (1.17) would not. The range is
  // Student's t (4.30 for 3 rounds) standard errors wide on either side;
  // two standard errors would claim 0.45-2.2.
  assert.equal(
    pairedRatio({ metric: "rate", reference: "node" }, {
      ours: { runs: runs(1, 2, 4) },
      node: { runs: runs(2, 2, 2) },
    }),
    "1x (0.18-5.6)",
  );
  // Ratios 0.5 and 2: the medians (2.5 over 2) say 1.25, the geometric
  // mean 1; two rounds can hardly tell anything (t is 12.7).
  assert.equal(
    pairedRatio({ metric: "rate", reference: "node" }, {
      ours: { runs: runs(1, 4) },
      node: { runs: runs(2, 2) },
    }),
    "1x (0-6682)",
  );
  // The same ratio every round: no spread, a range of one point.
  assert.equal(
    pairedRatio({ metric: "rate", reference: "node" }, {
      ours: { runs: runs(9, 18, 27) },
      node: { runs: runs(10, 20, 30) },
    }),
    "0.9x (0.9-0.9)",
  );
  // A round without a figure is left out; one round left is not enough.
  assert.equal(
    pairedRatio({ metric: "rate", reference: "node" }, {
      ours: { runs: [{ rate: 9 }, {}] },
      node: { runs: runs(10, 20) },
    }),
    "-",
  );
});

Deno.test("the README table shows the second Node copy against the first, where one ran", () => {
  const medians: Record<string, Record<string, number>> = {
    node: { rate: 200 },
    "node-b": { rate: 180 },
    ours: { rate: 190 },
  };
  assert.equal(
    sameServerTwice("rate", (server) => medians[server] ?? {}),
    "0.9x node",
  );
  // No second copy (the calculator and UDP groups): nothing to show.
  delete medians["node-b"];
  assert.equal(sameServerTwice("rate", (server) => medians[server] ?? {}), "-");
});

Deno.test("pool_paired.ts pools the rounds of several runs, pair by pair", () => {
  const runs = (...xs: number[]) => xs.map((x) => ({ rate: x }));
  const file = (ours: number[], node: number[]) => ({
    results: {
      fanout100: {
        ours: { runs: runs(...ours) },
        node: { runs: runs(...node) },
      },
    },
  });
  const files = new Map([
    ["a.json", file([1, 2], [2, 4])],
    // ours lost its last round here: node's third round has no pair.
    ["b.json", file([3], [6, 7])],
  ]);
  const pooled = poolRounds(files, "fanout100", ["ours", "node"]);
  assert.deepEqual(pooled.ours.runs, runs(1, 2, 3));
  assert.deepEqual(pooled.node.runs, runs(2, 4, 6));
  // Every pair is 0.5: the pooled range is one point.
  assert.equal(
    pairedRatio({ metric: "rate", reference: "node" }, pooled),
    "0.5x (0.5-0.5)",
  );
  assert.throws(
    () => poolRounds(files, "fanout100", ["ours", "node-b"]),
    /a\.json has no fanout100 runs of node-b/,
  );
});

/** The Markdown table rows of `text` as cells, without the `---` row. */
function tableCells(text: string): string[][] {
  return text.split("\n")
    .filter((line) => line.startsWith("|") && !/^\|[\s|:-]+\|$/.test(line))
    .map((line) => line.split("|").slice(1, -1).map((cell) => cell.trim()));
}

// The README says its Performance table is the output of compare.sh, that
// is of compare_table.ts on bench/results: every figure, ratio, "met?",
// round count and paired range a reader quotes comes from here.
Deno.test("the README's Performance table is compare_table.ts's table of bench/results", async () => {
  const readme = await Deno.readTextFile(`${ROOT}README.md`);
  const start = readme.indexOf("| workload ");
  const end = readme.indexOf("\n\n", start);
  assert.ok(start >= 0, "no Performance table in README.md");
  assert.deepEqual(
    tableCells(table(`${ROOT}bench/results`)),
    tableCells(readme.slice(start, end)),
  );
});

// The "met?" column at the edges the committed results never reach: a
// ratio of exactly 1.0 meets ">= 1.0x", a p99 within 1.2x meets the
// fan-out 1000 target, a failed login or an unchecked answer does not, and
// a row without figures says so instead of "no".
Deno.test("the README table's met? column: ties, p99, losses, unchecked answers, no figures", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lab-compare-" });
  try {
    const medians = (ours: Medians, node: Medians) => ({
      ours: { median: ours, runs: [] },
      node: { median: node, runs: [] },
    });
    await Deno.writeTextFile(
      `${dir}/chat.json`,
      JSON.stringify({
        results: {
          fanout100: medians(
            { deliveries_per_s: 100, lost: 0 },
            { deliveries_per_s: 100 },
          ),
          fanout1000: medians(
            { deliveries_per_s: 100, p99_ms: 11 },
            { deliveries_per_s: 100, p99_ms: 10 },
          ),
          storm: medians(
            { logins_per_s: 200, failures: 1 },
            { logins_per_s: 100 },
          ),
        },
      }),
    );
    await Deno.writeTextFile(
      `${dir}/calc.json`,
      JSON.stringify({
        results: {
          "calc-seq": medians({ answers_per_s: 200 }, { answers_per_s: 100 }),
        },
      }),
    );
    const rows = tableCells(table(dir)).slice(1);
    assert.deepEqual(rows.map((row) => row[7]), [
      "yes", // fan-out 100: 1.0x, nothing lost
      "yes", // fan-out 1000: 1.0x, p99 1.1x
      "not measured", // paced
      "**no**", // storm: 2x, but a login failed
      "not measured", // idle
      "**no**", // calculator: 2x, but no count of wrong answers
      "not measured", // calculator pipelined
      "not measured", // UDP
    ]);
    assert.deepEqual(rows[1].slice(2, 6), [
      "100",
      "100",
      "-",
      "1x node (p99 1.1x)",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** The round files bench/pool_paired.ts's own example pools. */
function pooledFirstRuns(): string[] {
  const dir = "bench/results/fanout100-pooled";
  return [...Deno.readDirSync(`${ROOT}${dir}`)]
    .map((entry) => entry.name)
    .filter((name) => /-first-\d+\.json$/.test(name))
    .sort()
    .map((name) => `${dir}/${name}`);
}

// pool_paired.ts's doc comment and bench/NOTES.md quote this line; 180
// rounds is past the 30 degrees of freedom of the t table.
Deno.test("pool_paired.ts prints the pooled paired ratio its doc comment quotes", async (t) => {
  const pool = (args: string[]) =>
    runScript("bench/pool_paired.ts", args, { denoFlags: ["--allow-read"] });
  const files = pooledFirstRuns();

  await t.step("ours over node, deliveries per second by default", async () => {
    const { code, stdout, stderr } = await pool([
      "fanout100",
      "ours/node",
      ...files,
    ]);
    assert.equal(code, 0, stderr);
    assert.equal(stdout, "ours/node over 180 rounds: 0.92x (0.89-0.95)\n");
  });

  await t.step("the other way round, and another figure", async () => {
    const { code, stdout, stderr } = await pool([
      "--metric",
      "p99_ms",
      "fanout100",
      "node/ours",
      ...files,
    ]);
    assert.equal(code, 0, stderr);
    assert.equal(stdout, "node/ours over 180 rounds: 0.88x (0.85-0.92)\n");
  });

  await t.step("a round with a failed run is not counted", async () => {
    const dir = await Deno.makeTempDir({ prefix: "lab-pool-" });
    try {
      // Ours failed its second round: no figure, no pair, 2 rounds of 3.
      const rounds = (...xs: (number | null)[]) =>
        xs.map((x) => ({ deliveries_per_s: x }));
      await Deno.writeTextFile(
        `${dir}/chat.json`,
        JSON.stringify({
          results: {
            fanout100: {
              ours: { runs: rounds(1, null, 3) },
              node: { runs: rounds(2, 2, 6) },
            },
          },
        }),
      );
      const { code, stdout, stderr } = await pool([
        "fanout100",
        "ours/node",
        `${dir}/chat.json`,
      ]);
      assert.equal(code, 0, stderr);
      assert.equal(stdout, "ours/node over 2 rounds: 0.5x (0.5-0.5)\n");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  await t.step("bad arguments exit 2, unreadable files 1", async () => {
    for (
      const args of [
        [],
        ["--bogus", "fanout100", "ours/node", files[0]],
        ["fanout100", "ours", files[0]],
        ["fanout100", "ours/node"],
      ]
    ) {
      const { code, stderr } = await pool(args);
      assert.equal(code, 2, `${args.join(" ")}: ${stderr}`);
      assert.match(stderr, /usage: pool_paired\.ts/);
    }
    const missing = await pool(["fanout100", "ours/node", "no/such.json"]);
    assert.equal(missing.code, 1, missing.stderr);
    assert.match(missing.stderr, /no\/such\.json/);
    const nobody = await pool(["fanout100", "ours/nobody", files[0]]);
    assert.equal(nobody.code, 1, nobody.stderr);
    assert.match(nobody.stderr, /has no fanout100 runs of nobody/);
  });
});

Deno.test("stats: round() and nearest-rank percentiles, exactly", () => {
  assert.equal(round(1.23456), 1.235);
  assert.equal(round(1.23456, 1), 1.2);
  assert.equal(round(-0.0049, 2), -0);
  assert.equal(round(Infinity), null);
  assert.equal(round(undefined), null);
  // The smallest rank is the minimum, p = 1 the maximum.
  const sorted = new Float64Array([5, 7, 9]);
  assert.equal(percentile(sorted, 0), 5);
  assert.equal(percentile(sorted, 1), 9);
  assert.equal(percentile(new Float64Array(), 0.5), null);
});

Deno.test("stats: Samples reports p50, p90, p99 by rank and the exact maximum", () => {
  const latency = new Samples();
  // 1..100 ms, the largest first: the last sample is not the maximum.
  for (const ms of [100, ...Array.from({ length: 99 }, (_, i) => i + 1)]) {
    latency.add(ms);
  }
  assert.deepEqual(latency.summary(), {
    samples: 100,
    p50_ms: 50,
    p90_ms: 90,
    p99_ms: 99,
    max_ms: 100,
  });
  assert.deepEqual(new Samples().summary(), {
    samples: 0,
    p50_ms: null,
    p90_ms: null,
    p99_ms: null,
    max_ms: null,
  });
});

// Past its capacity Samples keeps a uniform random subset (reservoir
// sampling: the n-th sample replaces a random slot with probability
// capacity / n). Math.random is pinned so that the choice is known.
Deno.test("stats: Samples past its capacity keeps a uniform subset, counts every sample", () => {
  const random = Math.random;
  const latency = new Samples(4);
  try {
    for (const ms of [1, 2, 3, 4]) latency.add(ms);
    Math.random = () => 0.99; // slot 4 of 0-4: the 5th sample is not kept
    latency.add(100);
    assert.deepEqual(latency.summary(), {
      samples: 5,
      p50_ms: 2,
      p90_ms: 4,
      p99_ms: 4,
      max_ms: 100,
    });
    Math.random = () => 0; // slot 0: the 6th sample replaces the 1st
    latency.add(6);
    assert.deepEqual(latency.summary(), {
      samples: 6,
      p50_ms: 3,
      p90_ms: 6,
      p99_ms: 6,
      max_ms: 100,
    });
  } finally {
    Math.random = random;
  }
});

/**
 * Run `bash -c script`, wait for its first line (`ready`), hand its pid to
 * `check`, then stop it and await its exit. The script ends in `read`, so
 * it waits, doing nothing, until then.
 */
async function withBash(
  script: string,
  check: (pid: number) => void,
): Promise<void> {
  await using bash = new RunningScript(
    new Deno.Command("bash", {
      args: ["-c", `${script} && echo ready && read -r _`],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn(),
  );
  await bash.waitFor("ready");
  check(bash.child.pid);
}

// /proc/PID/stat puts the process name in parentheses, and a name may hold
// ") ": procStat reads from the last ")", or every field after it shifts
// (the process group that bench/processes.ts looks for among them).
Deno.test("stats: procStat() reads the fields after a name holding ') '", async () => {
  await withBash('printf "x) 1 2" > /proc/$$/comm', (pid) => {
    assert.equal(Deno.readTextFileSync(`/proc/${pid}/comm`), "x) 1 2\n");
    const fields = procStat(pid)!;
    assert.equal(fields[1], String(Deno.pid)); // ppid
    assert.equal(fields[2], procStat("self")![2]); // pgrp: ours
  });
});

// openFilesShortage() in bench/main.ts compares with the hard limit.
Deno.test("stats: openFilesLimit() tells the soft limit from the hard one", async () => {
  const hard = openFilesLimit("self", "hard")!;
  await withBash("ulimit -Sn 77", (pid) => {
    assert.equal(openFilesLimit(pid), 77);
    assert.equal(openFilesLimit(pid, "soft"), 77);
    assert.equal(openFilesLimit(pid, "hard"), hard);
  });
});

/** Use at least 0.1 s of CPU, in user space and in the kernel. */
function burnCpu(): void {
  const start = cpuUsage();
  for (let i = 0; i < 1e6; i++) {
    Deno.readTextFileSync("/proc/self/stat"); // system calls: kernel time
    const used = cpuUsage(start);
    if (used.user >= 50_000 && used.system >= 50_000) return;
  }
  throw new Error("could not use 0.1 s of CPU");
}

// The server CPU columns (cpu us/op, the README's CPU per answer) come from
// /proc/PID/stat in clock ticks; getrusage (process.cpuUsage) counts the
// same time in microseconds. They agree within a tick or two.
Deno.test("stats: cpuSeconds() and cpuMeter() count user and system time", () => {
  burnCpu();
  const total = (u = cpuUsage()) => (u.user + u.system) / 1e6;
  const close = (a: number, b: number) => Math.abs(a - b) <= 0.03;
  const [ticks, usage] = [cpuSeconds("self")!, total()];
  assert.ok(close(ticks, usage), `${ticks} s from /proc, ${usage} s`);

  // This process as the "server": its share of a core is the load tool's.
  const stop = cpuMeter(Deno.pid);
  const before = cpuUsage();
  burnCpu();
  const use = stop();
  const spent = total(cpuUsage(before));
  assert.ok(
    close(use.server_cpu_s!, spent),
    `${use.server_cpu_s} s, ${spent} s`,
  );
  const [server, self] = [use.server_cpu_pct!, use.loadgen_cpu_pct!];
  assert.ok(Math.abs(server - self) <= self / 4 + 1, `${server}%, ${self}%`);
});

// The idle row's KiB per client is resident memory now, not the peak: a
// process that freed 64 MiB must read as its current size. The child frees
// it within gc(), not on a background thread, so it is gone by "ready".
Deno.test("stats: rssKiB() is resident memory now, not its peak", async () => {
  const code = `let block = new Uint8Array(64 << 20).fill(1);
block = null;
globalThis.gc();
console.log("ready");
await Deno.stdin.read(new Uint8Array(1));`;
  await using deno = new RunningScript(
    new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        "--v8-flags=--expose-gc,--no-concurrent-array-buffer-sweeping",
        code,
      ],
      cwd: ROOT,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn(),
  );
  await deno.waitFor("ready");
  const pid = deno.child.pid;
  const kib = (file: string, field: string) =>
    Number(
      new RegExp(`${field}:\\s+(\\d+) kB`).exec(
        Deno.readTextFileSync(`/proc/${pid}/${file}`),
      )![1],
    );
  // The page tables' count, read either side: the figure lies between.
  const before = kib("smaps_rollup", "Rss");
  const rss = rssKiB(pid)!;
  const after = kib("smaps_rollup", "Rss");
  const [low, high] = [Math.min(before, after), Math.max(before, after)];
  assert.ok(kib("status", "VmHWM") > high + 32 * 1024, "no peak to tell");
  assert.ok(
    low - 8 * 1024 < rss && rss < high + 8 * 1024,
    `${rss} KiB, ${before}-${after} KiB`,
  );
});

/** A RunResult for formatTable(): workload `name`, as report.ts gets it. */
function runResult(
  name: "fanout" | "calc-seq",
  server: string,
  result: Record<string, unknown>,
  problems: string[] = [],
): RunResult {
  const workload = WORKLOADS.find((w) => w.name === name)!;
  return { workload, server, result, stop: null, serverPid: null, problems };
}

// What `deno task bench` prints without --json: each figure in its column,
// "x first" against the first server with a figure in that workload, CPU
// per operation in microseconds, every kind of problem counted.
Deno.test("report: the bench table, column by column", () => {
  const text = formatTable([
    runResult("fanout", "ours", {}, ["server did not start"]),
    runResult("fanout", "node", {
      deliveries_per_s: 2000,
      p50_ms: 1.234,
      p99_ms: 5.678,
      server_cpu_s: 0.5,
      ops: 1000,
      server_rss_mb: 42.345,
      rss_after_mb: 99,
    }),
    runResult("fanout", "py", {
      deliveries_per_s: 500,
      p50_ms: 150.4,
      lost: 1,
      failures: 1,
      wrong: 1,
      bad_answers: 1,
      out_of_order: 1,
      malformed: 1,
      errors: 1,
      left_events: 1,
      dropped: 1,
    }, ["9 lost, failed or wrong"]),
    runResult("calc-seq", "ours", { answers_per_s: 3000, server_cpu_s: 0 }),
  ]);
  assert.equal(
    text,
    [
      "workload  server  figure  unit          x first  p50 ms  p99 ms  problems  srv cpu s  cpu us/op  rss MB  status",
      "fanout    ours         -  deliveries/s        -       -       -         0          -          -       -  FAIL: server did not start",
      "fanout    node      2000  deliveries/s     1.00    1.23    5.68         0        0.5        500   42.35  ok",
      "fanout    py         500  deliveries/s     0.25     150       -         9          -          -       -  FAIL: 9 lost, failed or wrong",
      "calc-seq  ours      3000  answers/s        1.00       -       -         0          0          -       -  ok",
    ].join("\n"),
  );
});

// bench/processes.ts measures and stops the process that holds the
// listening socket, not the shells or `deno task` in front of it: CPU and
// memory are that process's, and SIGTERM goes to it. Here the server is
// two processes down, as under `npm start`: a shell that waits for
// `deno task` (it has more to do after it), and `deno task` itself.
Deno.test("processes: startServer() finds the listener behind a shell and deno task, and stops it cleanly", async () => {
  const server = await startServer(
    `bash -c 'deno task -q calc-server "$@"; exit' bash`,
    { cwd: ROOT },
  );
  let stopped;
  try {
    const argv = Deno.readTextFileSync(`/proc/${server.pid}/cmdline`)
      .split("\0");
    assert.ok(argv.includes("tcp/calc_server.ts"), argv.join(" "));
  } finally {
    stopped = await server.stop();
  }
  assert.deepEqual(stopped, {
    code: 0,
    signal: null,
    lastLine: "Calculator server stopped",
  });
  assert.ok(!running(server.pid));
});

// A server that ignores SIGTERM is killed after its grace time, and says
// so with a null code: bench/main.ts then reports an unclean stop.
Deno.test("processes: a server that ignores SIGTERM is killed, its code null", async () => {
  // Whatever the bench appends (--host, --port) lands in the comment.
  const server = await startServer(
    "trap '' TERM; echo listening on 127.0.0.1:9; exec sleep 1000 #",
    { cwd: ROOT },
  );
  assert.deepEqual(await server.stop(100), {
    code: null,
    signal: null,
    lastLine: "listening on 127.0.0.1:9",
  });
});

Deno.test("processes: a server must print 'listening on' first, not later", async () => {
  await assert.rejects(async () => {
    const server = await startServer(
      "printf 'hello\\nlistening on 127.0.0.1:9\\n'; exec sleep 1000 #",
      { cwd: ROOT },
    );
    await server.stop(0);
  }, /did not print 'listening on HOST:PORT' first: "hello"/);
});

Deno.test("processes: a load tool still running at its time limit is killed, and the result says so", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lab-tool-" });
  try {
    const script = `${dir}/forever.ts`;
    await Deno.writeTextFile(script, "setInterval(() => {}, 60_000);\n");
    const result = await within(
      runTool(script, [], { cwd: ROOT, timeoutMs: 200 }),
      20_000,
      "runTool() waited past the tool's time limit",
    );
    assert.match(
      String(result.error),
      /forever\.ts: no JSON result \(killed after its time limit\)/,
    );
  } finally {
    killAll();
    await Deno.remove(dir, { recursive: true });
  }
});

// A wrong server's result lists its failure reasons and wrong answers: a
// long line, which must come back whole, counts and all.
Deno.test("processes: a load tool's long JSON line comes back whole", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lab-tool-" });
  try {
    const script = `${dir}/long.ts`;
    await Deno.writeTextFile(
      script,
      `console.log("a line before it");
console.log(JSON.stringify({ failures: 3, failure_reasons: { ["x".repeat(5000)]: 3 } }));`,
    );
    const result = await runTool(script, [], { cwd: ROOT, timeoutMs: 20_000 });
    assert.equal(result.failures, 3, String(result.error));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** bench/main.ts with `args` (no --quick or --json added). */
function benchMain(args: string[]) {
  return runScript("bench/main.ts", args, {
    denoFlags: BENCH_FLAGS,
    timeoutMs: 120_000,
  });
}

Deno.test("bench/main.ts: --help exits 0, bad flags exit 2 and run nothing", async () => {
  const help = await benchMain(["--help"]);
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /^Benchmark of the chat/);
  assert.match(help.stdout, /Usage: deno task bench/);
  for (
    const [args, message] of [
      [["--workloads", "fanout,nope"], /unknown workload "nope"/],
      [["--servers", "nobody"], /unknown server "nobody"/],
      [["--server", "udp:x=true"], /--server must be KIND:NAME=COMMAND/],
      [["--bogus"], /bogus/],
    ] as const
  ) {
    const { code, stdout, stderr } = await benchMain([...args]);
    assert.equal(code, 2, `${args.join(" ")}: ${stderr}`);
    assert.match(stderr, message);
    assert.equal(stdout, "");
  }
});

// "Exit 0 when every run completed with nothing lost": no run at all is not
// that. The workloads are chat and the only server a calculator, so nothing
// starts; without --quick, the JSON says so. (A space after a comma in
// LIST is allowed.)
Deno.test("bench/main.ts: a selection with no runs exits 1", async () => {
  const { code, stdout, stderr } = await benchMain([
    "--json",
    "--workloads",
    "fanout, storm",
    "--servers",
    "mine",
    "--server",
    "calc:mine=true",
  ]);
  assert.equal(code, 1, stderr);
  const { meta, runs } = JSON.parse(stdout);
  assert.deepEqual(runs, []);
  assert.equal(meta.quick, false);
});

// The table that `deno task bench` prints, with one good run and one bad:
// the bad one alone makes the exit code 1.
Deno.test("bench/main.ts: the table, and exit 1 when one run of two fails", async () => {
  const script = `${ROOT}tests/faulty_servers.ts`;
  const { code, stdout, stderr } = await benchMain([
    "--quick",
    "--workloads",
    "udp",
    "--server",
    `time:time-error=deno run --allow-net --unstable-net ${script} time-error`,
  ]);
  assert.equal(code, 1, stderr);
  const rows = stdout.trimEnd().split("\n").map((line) => line.split(/\s+/));
  assert.deepEqual(rows.map((row) => row.slice(0, 2)), [
    ["workload", "server"],
    ["udp", "ours"],
    ["udp", "time-error"],
  ]);
  assert.equal(rows[1].at(-1), "ok");
  assert.match(stdout.split("\n")[2], /FAIL: \d+ answers of the wrong shape/);
});

Deno.test("bench/main.ts: --refs takes the reference servers from --refs-dir", async () => {
  const { code, stdout, stderr } = await benchMain([
    "--quick",
    "--json",
    "--refs",
    "--refs-dir",
    "/nonexistent/bench",
    "--workloads",
    "udp",
    "--servers",
    "node",
  ]);
  assert.equal(code, 1, stderr);
  const [run] = JSON.parse(stdout).runs as Run[];
  assert.equal(run.command, "node /nonexistent/bench/time_server_node.mjs");
  assert.equal(run.ok, false);
});
