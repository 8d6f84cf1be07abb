/**
 * The benchmark: starts each server under test in its own process, drives
 * it with a load tool in another process (bench/chat_load.ts,
 * bench/calc_load.ts, bench/udp_load.ts), and prints a table (or, with
 * `--json`, every result as JSON). A fresh server for every workload, one
 * workload at a time, only on 127.0.0.1; every process is killed and
 * awaited before the next starts.
 *
 * ```sh
 * deno task bench                      # our three servers, full size (minutes)
 * deno task bench --quick              # tiny sizes, seconds: checks, not speed
 * deno task bench --refs               # ours beside the reference servers of ../shared/bench
 * deno task bench --workloads fanout,calc-pipe --server 'chat:mine=node my_chat.mjs' --server 'calc:mine=python3 calc.py'
 * deno task bench --json > results.json
 * ```
 *
 * Exit 0 when every run completed with nothing lost, failed or wrong (speed
 * never decides it), 1 otherwise, 2 for bad flags.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { runMain, UsageError } from "../lib/cli.ts";
import { onShutdown } from "../lib/net.ts";
import {
  killAll,
  runTool,
  startServer,
  type StopResult,
  type ToolResult,
} from "./processes.ts";
import { formatTable, problemCount, type RunResult } from "./report.ts";
import { openFilesLimit } from "./stats.ts";
import {
  type Kind,
  OUR_SERVERS,
  referenceServers,
  type ServerSpec,
  type Workload,
  WORKLOADS,
} from "./workloads.ts";

/** The project root: servers and tools run from here. */
// Not .pathname: a folder named "My Labs" would read "My%20Labs".
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const DEFAULT_REFS_DIR = fileURLToPath(
  new URL("../../shared/bench", import.meta.url),
);

/** A server must print its `listening on` line within this time. */
const START_TIMEOUT_MS = 30_000;
/** Open files a load tool or server needs beyond its connections. */
const SPARE_FILES = 64;

const USAGE = `Benchmark of the chat, calculator and UDP date/time servers.

Usage: deno task bench [--quick] [--json] [--workloads LIST] [--servers LIST]
                       [--refs] [--refs-dir DIR] [--server KIND:NAME=COMMAND ...]

Options:
  --quick                  tiny sizes: runs in seconds (for tests; figures mean nothing)
  --json                   print every result as JSON instead of the table
  --workloads LIST         comma-separated, from: ${
  WORKLOADS.map((w) => w.name).join(", ")
}
  --servers LIST           only the servers with these names (e.g. ours,node)
  --refs                   add the reference servers (node, py) from --refs-dir
  --refs-dir DIR           default: ${DEFAULT_REFS_DIR}
  --server KIND:NAME=CMD   add a server; KIND is chat, calc or time; CMD is a shell
                           command run from the project root, given
                           --host 127.0.0.1 --port 0, printing 'listening on HOST:PORT' first
  --help                   show this help and exit`;

interface Options {
  quick: boolean;
  json: boolean;
  workloads: Workload[];
  servers: ServerSpec[];
}

function parseOptions(args: string[]): Options | null {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      options: {
        quick: { type: "boolean" },
        json: { type: "boolean" },
        workloads: { type: "string" },
        servers: { type: "string" },
        refs: { type: "boolean" },
        "refs-dir": { type: "string" },
        server: { type: "string", multiple: true },
        help: { type: "boolean" },
      },
    }));
  } catch (error) {
    throw new UsageError((error as Error).message.split(/\.\s|\n/)[0]);
  }
  if (values.help) {
    console.log(USAGE);
    return null;
  }
  const servers = [...OUR_SERVERS];
  if (values.refs) {
    servers.push(...referenceServers(values["refs-dir"] ?? DEFAULT_REFS_DIR));
  }
  for (const text of values.server ?? []) servers.push(parseServer(text));
  return {
    quick: values.quick ?? false,
    json: values.json ?? false,
    workloads: pick(WORKLOADS, values.workloads, "workload"),
    servers: values.servers ? pickServers(servers, values.servers) : servers,
  };
}

function parseServer(text: string): ServerSpec {
  const m = /^(chat|calc|time):([\w.-]+)=(.+)$/s.exec(text);
  if (!m) {
    throw new UsageError(
      `--server must be KIND:NAME=COMMAND (KIND: chat, calc or time), not "${text}"`,
    );
  }
  return { kind: m[1] as Kind, name: m[2], command: m[3] };
}

function pick(
  all: readonly Workload[],
  list: string | undefined,
  what: string,
): Workload[] {
  if (list === undefined) return [...all];
  return list.split(",").map((name) => {
    const found = all.find((w) => w.name === name.trim());
    if (!found) {
      throw new UsageError(
        `unknown ${what} "${name}" (known: ${
          all.map((w) => w.name).join(", ")
        })`,
      );
    }
    return found;
  });
}

function pickServers(all: ServerSpec[], list: string): ServerSpec[] {
  const names = list.split(",").map((n) => n.trim());
  const unknown = names.filter((n) => !all.some((s) => s.name === n));
  if (unknown.length) {
    throw new UsageError(
      `unknown server "${unknown[0]}" (add it with --server or --refs)`,
    );
  }
  return all.filter((s) => names.includes(s.name));
}

/** Run workload `w` against a fresh server `s`; the server is stopped before this returns. */
async function runOne(
  w: Workload,
  s: ServerSpec,
  quick: boolean,
): Promise<RunResult> {
  const run: RunResult = {
    workload: w,
    server: s.name,
    result: {},
    stop: null,
    serverPid: null,
    problems: [],
  };
  const tooFew = openFilesShortage(quick ? 0 : w.connections);
  if (tooFew) {
    run.problems.push(tooFew);
    return run;
  }
  try {
    const server = await startServer(s.command, {
      cwd: ROOT,
      timeoutMs: START_TIMEOUT_MS,
    });
    run.serverPid = server.pid;
    try {
      run.result = await runTool(
        `bench/${w.tool}`,
        toolArgs(w, quick, server),
        {
          cwd: ROOT,
          timeoutMs: (toolTimeout(w, quick) + 30) * 1000,
          denoFlags: ["--allow-all", "--unstable-net"],
        },
      );
    } finally {
      run.stop = await server.stop();
    }
  } catch (error) {
    run.problems.push((error as Error).message);
  }
  run.problems.push(...judge(run.result, run.stop));
  return run;
}

/** Why `connections` cannot be opened here, or null when they can. */
function openFilesShortage(connections: number): string | null {
  const hard = openFilesLimit("self", "hard") ?? Infinity;
  const need = connections + SPARE_FILES;
  return need > hard
    ? `needs ${need} open files; the hard limit is ${hard}`
    : null;
}

function toolTimeout(w: Workload, quick: boolean): number {
  return quick ? w.quickTimeout : w.timeout;
}

function toolArgs(
  w: Workload,
  quick: boolean,
  server: { port: number; pid: number },
): string[] {
  return [
    ...(quick ? w.quickArgs : w.args),
    ...["--port", String(server.port), "--pid", String(server.pid)],
    ...["--timeout", String(toolTimeout(w, quick))],
  ];
}

/** What went wrong in a run: its error, anything lost or wrong, an unclean stop. */
function judge(result: ToolResult, stop: StopResult | null): string[] {
  const problems: string[] = [];
  if (result.error) problems.push(result.error);
  else if (problemCount(result) > 0) {
    problems.push(`${problemCount(result)} lost, failed or wrong`);
  }
  if (stop && (stop.code !== 0 || stop.signal)) {
    problems.push(
      `server did not exit 0 on SIGTERM (code ${stop.code}, signal ${stop.signal})`,
    );
  }
  return problems;
}

function progressLine(run: RunResult): string {
  const figure = run.result[run.workload.metric];
  const status = run.problems.length
    ? `FAIL: ${run.problems.join("; ")}`
    : "ok";
  return `[${run.workload.name} ${run.server}] ${
    figure ?? "-"
  } ${run.workload.unit}, ` +
    `p99 ${run.result.p99_ms ?? "-"} ms: ${status}`;
}

function machine() {
  let cpu = "unknown";
  try {
    cpu = /model name\s*:\s*(.+)/.exec(Deno.readTextFileSync("/proc/cpuinfo"))
      ?.[1] ?? cpu;
  } catch {
    // not Linux
  }
  return {
    date: new Date().toISOString(),
    nproc: navigator.hardwareConcurrency,
    cpu_model: cpu,
    deno: Deno.version.deno,
    loadavg_start: Deno.loadavg(),
  };
}

async function main(): Promise<number> {
  const options = parseOptions(Deno.args);
  if (!options) return 0;
  const removeHandlers = onShutdown(() => {
    killAll();
    Deno.exit(130);
  });
  const meta = { ...machine(), quick: options.quick };
  const runs: RunResult[] = [];
  try {
    for (const w of options.workloads) {
      for (const s of options.servers.filter((s) => s.kind === w.kind)) {
        const run = await runOne(w, s, options.quick);
        runs.push(run);
        console.error(progressLine(run));
      }
    }
  } finally {
    killAll();
    removeHandlers();
  }
  if (options.json) {
    console.log(JSON.stringify({
      meta: { ...meta, loadavg_end: Deno.loadavg() },
      runs: runs.map((r) => ({
        workload: r.workload.name,
        title: r.workload.title,
        server: r.server,
        command: options.servers.find((s) =>
          s.name === r.server && s.kind === r.workload.kind
        )?.command,
        metric: r.workload.metric,
        unit: r.workload.unit,
        ok: r.problems.length === 0,
        problems: r.problems,
        result: r.result,
        stop: r.stop,
        server_pid: r.serverPid,
      })),
    }));
  } else {
    console.log(formatTable(runs));
  }
  return runs.length > 0 && runs.every((r) => r.problems.length === 0) ? 0 : 1;
}

if (import.meta.main) {
  await runMain(main, { name: "bench", summary: "Benchmark.", flags: {} });
}
