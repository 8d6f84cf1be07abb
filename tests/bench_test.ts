/**
 * The benchmark (bench/main.ts) as a correctness check: `deno task bench
 * --quick` runs every workload against our servers at tiny sizes, and every
 * message must arrive, every login succeed, every calculator answer be right
 * and every server stop cleanly. Speed is never checked here.
 *
 * Run: deno test -A tests/bench_test.ts
 *
 * @module
 */

import assert from "node:assert/strict";
import { ROOT, running, runScript } from "./support.ts";
import { WORKLOADS } from "../bench/workloads.ts";
import {
  pairedRatio,
  roundsBetter,
  sameServerTwice,
} from "../bench/compare_table.ts";
import { poolRounds } from "../bench/pool_paired.ts";

/** What bench/main.ts --json says about one run. */
interface Run {
  workload: string;
  server: string;
  ok: boolean;
  problems: string[];
  result: Record<string, number | string | null>;
  stop: { code: number | null; signal: string | null } | null;
  server_pid: number | null;
}

const BENCH_FLAGS = ["--allow-all"];

async function bench(args: string[]) {
  const { code, stdout, stderr } = await runScript("bench/main.ts", [
    "--quick",
    "--json",
    ...args,
  ], { denoFlags: BENCH_FLAGS, timeoutMs: 120_000 });
  let runs: Run[] = [];
  try {
    runs = JSON.parse(stdout).runs;
  } catch {
    assert.fail(
      `no JSON from bench/main.ts (exit ${code}):\n${stdout}\n${stderr}`,
    );
  }
  return { code, runs, stderr };
}

Deno.test("deno task bench --quick: every workload against our servers, nothing lost or wrong", async (t) => {
  const { code, runs, stderr } = await bench([]);
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

  await t.step(
    "every server exits 0 on SIGTERM and nothing is left running",
    () => {
      for (const r of runs) {
        assert.deepEqual(
          r.stop && [r.stop.code, r.stop.signal],
          [0, null],
          r.workload,
        );
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
    assert.equal(
      storm.get("chat-no-bye")!.result.failures,
      quickFlag("storm", "--clients"),
    );
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
