/**
 * Pools the rounds of several compare.mjs runs of one workload and prints
 * the paired ratio of two servers over all of them: the README's "paired"
 * column (bench/compare_table.ts) with more rounds than one run holds. One
 * 20-round run of fan-out 100 can put ours anywhere from 0.87x to 1.05x of
 * Node; a hundred rounds pin it down (bench/NOTES.md).
 *
 * Run:
 *   deno run --allow-read bench/pool_paired.ts fanout100 ours/node \
 *     bench/results/fanout100-pooled/*-first-*.json
 * prints `ours/node over 180 rounds: 0.92x (0.89-0.95)`. `--metric`
 * picks the figure (default `deliveries_per_s`).
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  type ByServer,
  type CompareJson,
  type Medians,
  pairedLogs,
  pairedRatio,
} from "./compare_table.ts";

/**
 * Every round of `label` from `files` (by name), in order, for each of
 * `servers`. A round is kept only where all the servers ran it, so the pairs
 * stay pairs (within a round compare.mjs runs the servers one after the
 * other). Throws, naming the file, where a server is missing.
 */
export function poolRounds(
  files: Map<string, CompareJson>,
  label: string,
  servers: string[],
): NonNullable<ByServer> {
  const pooled: Record<string, { runs: Medians[] }> = {};
  for (const server of servers) pooled[server] = { runs: [] };
  for (const [name, file] of files) {
    const workload = file.results[label];
    const missing = servers.filter((s) => !workload?.[s]);
    if (missing.length > 0) {
      throw new Error(`${name} has no ${label} runs of ${missing.join(", ")}`);
    }
    const rounds = Math.min(...servers.map((s) => workload[s].runs.length));
    for (const s of servers) {
      pooled[s].runs.push(...workload[s].runs.slice(0, rounds));
    }
  }
  return pooled;
}

const USAGE =
  "usage: pool_paired.ts [--metric NAME] WORKLOAD SERVER/REFERENCE FILE.json...";

function main(args: string[]): number {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: { metric: { type: "string", default: "deliveries_per_s" } },
      allowPositionals: true,
    });
  } catch (error) { // an unknown flag, or --metric without a value
    console.error(`pool_paired.ts: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals: [label, pair, ...paths] } = parsed;
  const [server, reference] = pair?.split("/") ?? [];
  if (!label || !server || !reference || paths.length === 0) {
    console.error(USAGE);
    return 2;
  }
  let bySrv;
  try { // a file missing, not JSON, or without the servers
    const files = new Map(
      paths.map((p) => [p, JSON.parse(Deno.readTextFileSync(p))]),
    );
    bySrv = poolRounds(files, label, [server, reference]);
  } catch (error) {
    console.error(`pool_paired.ts: ${(error as Error).message}`);
    return 1;
  }
  const row = { metric: values.metric!, server, reference };
  // The rounds behind the ratio: one without a figure (a failed run) or
  // without its partner round is left out.
  const rounds = pairedLogs(row, bySrv).length;
  console.log(`${pair} over ${rounds} rounds: ${pairedRatio(row, bySrv)}`);
  return 0;
}

if (import.meta.main) Deno.exit(main(Deno.args));
