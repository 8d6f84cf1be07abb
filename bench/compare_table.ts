/**
 * Turns the results of bench/compare.sh (compare.mjs JSON files in one
 * folder) into the README's Performance table: per target, our median
 * beside the references' medians, the ratio, whether the target is met, and
 * in how many rounds ours did better than the reference. That column is
 * there because the machine drifts: compare.mjs runs the servers one after
 * the other within a round, so each round is a fair pair even when the
 * medians of a noisy row move by a tenth from one run to the next. Where
 * compare.sh ran a second copy of the Node reference (`node-b`, the chat
 * rows), the last column gives its median over the first copy's: what the
 * same server scores against itself in the same run, the resolution of that
 * row. The "paired" column uses the same pairs: the geometric mean of the
 * per-round ratios, with the range the true ratio lies in at 95%
 * confidence, which a ratio of medians cannot give.
 *
 * Run: deno run --allow-read bench/compare_table.ts bench/results
 *
 * @module
 */

/** One README row: where its figures are and what the target is. */
interface Row {
  title: string;
  /** compare.sh group (file name) and compare.mjs workload label. */
  group: string;
  label: string;
  /** The figure compared, its unit, and the reference it is compared with. */
  metric: string;
  /** Whether a smaller figure is the better one (a latency, memory). */
  lowerIsBetter?: boolean;
  unit: string;
  reference: string;
  target: string;
  /** Whether the target is met, from the medians of ours and the reference. */
  met: (ours: Medians, ref: Medians) => boolean;
  /**
   * Take round 1 instead of the median: compare.mjs starts each server once,
   * so only round 1 measures memory from a fresh process (round 2 starts
   * from what round 1 left behind).
   */
  firstRound?: boolean;
}

export type Medians = Record<string, number | null | undefined>;

const ratio = (ours: Medians, ref: Medians, key: string) =>
  (ours[key] ?? NaN) / (ref[key] ?? NaN);
const noneLost = (m: Medians) => (m.lost ?? m.failures ?? 0) === 0;

const ROWS: Row[] = [
  {
    title: "chat fan-out, 100 clients, 10 senders x 500, 100 B",
    group: "chat",
    label: "fanout100",
    metric: "deliveries_per_s",
    unit: "deliveries/s",
    reference: "node",
    target: ">= 1.0x node, 0 lost",
    met: (o, r) => ratio(o, r, "deliveries_per_s") >= 1 && noneLost(o),
  },
  {
    title: "chat fan-out, 1000 clients, 1 sender x 200, 100 B",
    group: "chat",
    label: "fanout1000",
    metric: "deliveries_per_s",
    unit: "deliveries/s",
    reference: "node",
    target: ">= 1.0x node, p99 <= 1.2x",
    met: (o, r) =>
      ratio(o, r, "deliveries_per_s") >= 1 && ratio(o, r, "p99_ms") <= 1.2,
  },
  {
    title: "chat paced, 100 clients, 10 senders at 20 msg/s",
    group: "chat",
    label: "paced",
    metric: "p99_ms",
    lowerIsBetter: true,
    unit: "ms p99",
    reference: "node",
    target: "p99 <= 1.2x node",
    met: (o, r) => ratio(o, r, "p99_ms") <= 1.2 && noneLost(o),
  },
  {
    title: "chat connect storm 2000, 100 at a time",
    group: "chat",
    label: "storm",
    metric: "logins_per_s",
    unit: "logins/s",
    reference: "node",
    target: ">= 1.0x node",
    met: (o, r) => ratio(o, r, "logins_per_s") >= 1 && noneLost(o),
  },
  {
    title: "chat idle, 5000 logged-in clients, after 20 s (round 1)",
    group: "idle",
    label: "idle5000",
    metric: "kib_per_client_held",
    lowerIsBetter: true,
    unit: "KiB/client",
    reference: "node",
    target: "<= 10 KiB per client",
    met: (o) =>
      (o.kib_per_client_held ?? Infinity) <= 10 && (o.logins ?? 0) >= 5000,
    firstRound: true,
  },
  {
    title: "calculator, 50 sessions x 1000, sequential",
    group: "calc",
    label: "calc-seq",
    metric: "answers_per_s",
    unit: "answers/s",
    reference: "node",
    target: ">= 1.0x node",
    met: (o, r) => ratio(o, r, "answers_per_s") >= 1 && (o.wrong ?? 1) === 0,
  },
  {
    title: "calculator, 50 sessions x 1000, 8 pipelined",
    group: "calc",
    label: "calc-pipe8",
    metric: "answers_per_s",
    unit: "answers/s",
    reference: "node",
    target: ">= 1.0x node",
    met: (o, r) => ratio(o, r, "answers_per_s") >= 1 && (o.wrong ?? 1) === 0,
  },
  {
    title: "UDP date/time, 64 outstanding, 15 s",
    group: "udp",
    label: "udp64",
    metric: "answered_per_s",
    unit: "answers/s",
    reference: "py",
    target: ">= 1.0x py (the faster reference), 0 lost",
    met: (o, r) => ratio(o, r, "answered_per_s") >= 1 && noneLost(o),
  },
];

/** A compare.mjs JSON file: for each workload (by label), each server's runs. */
export interface CompareJson {
  results: Record<string, NonNullable<ByServer>>;
}

/**
 * compare.mjs's results for one workload: each server's figures, round by
 * round, and their medians (which bench/pool_paired.ts does not need).
 */
export type ByServer =
  | Record<string, { median?: Medians; runs: Medians[] }>
  | undefined;

function load(dir: string, group: string): CompareJson | null {
  try {
    return JSON.parse(Deno.readTextFileSync(`${dir}/${group}.json`));
  } catch {
    return null;
  }
}

function fmt(x: number | null | undefined): string {
  if (x == null || !Number.isFinite(x)) return "-";
  return Math.abs(x) >= 100
    ? String(Math.round(x))
    : String(Math.round(x * 100) / 100);
}

/** The Markdown table for the results in `dir`. */
export function table(dir: string): string {
  const lines = [
    "| workload | figure | ours | node ref | py ref | ours / ref | target | met? | rounds ours better | paired, round by round (95% range) | same server twice |",
    "| --- | --- | ---: | ---: | ---: | ---: | --- | --- | ---: | ---: | ---: |",
  ];
  for (const row of ROWS) {
    const bySrv = load(dir, row.group)?.results[row.label];
    const m = (server: string): Medians =>
      (row.firstRound ? bySrv?.[server]?.runs[0] : bySrv?.[server]?.median) ??
        {};
    const better = row.firstRound ? "-" : roundsBetter(row, bySrv);
    const paired = row.firstRound ? "-" : pairedRatio(row, bySrv);
    const control = sameServerTwice(row.metric, m);
    lines.push(
      `| ${[...cells(row, m), better, paired, control].join(" | ")} |`,
    );
  }
  return lines.join("\n");
}

/**
 * Which figure to pair, and the two servers: `server` (default "ours")
 * against `reference`.
 */
type Pairing = Pick<Row, "metric" | "reference"> & { server?: string };

/**
 * Our figure (or `server`'s) and the reference's, round by round, for the
 * rounds both ran (a figure is missing where a run failed).
 */
function roundPairs(
  row: Pairing,
  bySrv: ByServer,
): [ours: number | null | undefined, ref: number | null | undefined][] {
  const ours = bySrv?.[row.server ?? "ours"]?.runs ?? [],
    ref = bySrv?.[row.reference]?.runs ?? [];
  return ours.slice(0, ref.length)
    .map((run, i) => [run[row.metric], ref[i][row.metric]]);
}

/**
 * "k of n": the rounds in which our figure beat the reference's, each
 * round's pair measured minutes apart at most.
 */
export function roundsBetter(
  row: Pick<Row, "metric" | "reference" | "lowerIsBetter">,
  bySrv: ByServer,
): string {
  const pairs = roundPairs(row, bySrv);
  if (pairs.length === 0) return "-";
  const better = pairs.filter(([a, b]) =>
    a != null && b != null && (row.lowerIsBetter ? a < b : a > b)
  );
  return `${better.length} of ${pairs.length}`;
}

/**
 * Ours (or `server`) over the reference round by round: the geometric mean
 * of the per-round ratios and, from their spread, the range that holds the
 * true ratio at 95% confidence (the mean of the logarithms plus or minus
 * Student's t times their standard error), as "0.93x (0.88-0.99)". Each
 * round's pair ran minutes apart at most, so a machine that drifts through
 * the run moves both figures of a pair together and the ratio little. "-"
 * with fewer than two rounds.
 */
export function pairedRatio(
  row: Pairing,
  bySrv: ByServer,
): string {
  const logs = pairedLogs(row, bySrv);
  const n = logs.length;
  if (n < 2) return "-";
  const mean = logs.reduce((sum, x) => sum + x, 0) / n;
  const variance = logs.reduce((sum, x) => sum + (x - mean) ** 2, 0) / (n - 1);
  const margin = studentT975(n - 1) * Math.sqrt(variance / n);
  const asRatio = (log: number) => fmt(Math.exp(log));
  const [low, high] = [asRatio(mean - margin), asRatio(mean + margin)];
  return `${asRatio(mean)}x (${low}-${high})`;
}

/**
 * The logarithm of ours over the reference in each round that has both
 * figures: the rounds behind {@linkcode pairedRatio}.
 */
export function pairedLogs(row: Pairing, bySrv: ByServer): number[] {
  return roundPairs(row, bySrv)
    .map(([a, b]) => Math.log((a ?? NaN) / (b ?? NaN)))
    .filter(Number.isFinite);
}

/**
 * Student's t at 97.5% for `df` degrees of freedom, from the usual table:
 * the mean of n rounds lies within t(n - 1) standard errors of the true mean
 * with 95% confidence. With few rounds t is well above the normal
 * distribution's 1.96 (2.20 for 12 rounds), so a plain "two standard
 * errors" would claim a range a tenth too narrow. Past 30 degrees of
 * freedom, 2.04 (the value at 30; the exact value falls towards 1.96, so
 * the range is then up to 4% wider than it needs to be).
 */
function studentT975(df: number): number {
  // deno-fmt-ignore
  const table = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, //  1-10
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, // 11-20
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042, // 21-30
  ];
  return table[Math.min(df, table.length) - 1];
}

/**
 * The control: the median of `node-b`, a second copy of the Node reference
 * started beside the first, over the first copy's ("1.08x node"), or "-"
 * where no second copy ran. A ratio of ours within this far of 1.0 is within
 * what the run can tell apart.
 */
export function sameServerTwice(
  metric: string,
  m: (server: string) => Medians,
): string {
  const twice = ratio(m("node-b"), m("node"), metric); // NaN without node-b
  return Number.isFinite(twice) ? `${fmt(twice)}x node` : "-";
}

/** One row's cells, from the medians of each server. */
function cells(row: Row, m: (server: string) => Medians): string[] {
  const ours = m("ours"), ref = m(row.reference);
  const measured = ours[row.metric] != null;
  let vsRef = `${fmt(ratio(ours, ref, row.metric))}x ${row.reference}`;
  if (row.label === "fanout1000") {
    vsRef += ` (p99 ${fmt(ratio(ours, ref, "p99_ms"))}x)`;
  }
  if (row.label === "idle5000") {
    vsRef += ` (1 s after logins: ${fmt(ours.kib_per_client)} vs ` +
      `${fmt(ref.kib_per_client)})`;
  }
  const met = !measured
    ? "not measured"
    : row.met(ours, ref)
    ? "yes"
    : "**no**";
  return [
    row.title,
    row.unit,
    fmt(ours[row.metric]),
    fmt(m("node")[row.metric]),
    fmt(m("py")[row.metric]),
    vsRef,
    row.target,
    met,
  ];
}

if (import.meta.main) console.log(table(Deno.args[0] ?? "bench/results"));
