/**
 * What the benchmark measures: the servers (ours, and any added with
 * `--server`) and the workloads, each at full size (the README's
 * Performance table) and at `--quick` size (seconds, for the tests).
 *
 * Not a script: bench/main.ts imports it.
 *
 * @module
 */

import config from "../deno.json" with { type: "json" };

/** Which protocol a server speaks, and so which workloads it gets. */
export type Kind = "chat" | "calc" | "time";

/** A server under test: `command` gets `--host 127.0.0.1 --port 0` appended. */
export interface ServerSpec {
  kind: Kind;
  name: string;
  command: string;
}

/**
 * Our servers, run from the project root exactly as their `deno task`
 * runs them (deno.json: the narrowest permissions, and the chat server's
 * memory settings); the chat server may hold 20000 clients.
 */
export const OUR_SERVERS: readonly ServerSpec[] = [
  {
    kind: "chat",
    name: "ours",
    command: `${task("chat-server")} --max-clients 20000`,
  },
  { kind: "calc", name: "ours", command: task("calc-server") },
  { kind: "time", name: "ours", command: task("udp-time-server") },
];

/** The command of one of deno.json's tasks. */
function task(name: keyof typeof config.tasks): string {
  return config.tasks[name];
}

/**
 * The reference servers of the shared bench folder (`dir`), as `node` and
 * `py`: the instruments our servers are compared with.
 */
export function referenceServers(dir: string): ServerSpec[] {
  return [
    {
      kind: "chat",
      name: "node",
      command: `node ${dir}/chat_server_node.mjs --max-clients 20000`,
    },
    {
      kind: "chat",
      name: "py",
      command: `python3 ${dir}/chat_server.py --max-clients 20000`,
    },
    { kind: "calc", name: "node", command: `node ${dir}/calc_server_node.mjs` },
    { kind: "calc", name: "py", command: `python3 ${dir}/calc_server.py` },
    { kind: "time", name: "node", command: `node ${dir}/time_server_node.mjs` },
    { kind: "time", name: "py", command: `python3 ${dir}/time_server.py` },
  ];
}

/** One workload: a load tool and its flags, full size and quick. */
export interface Workload {
  name: string;
  kind: Kind;
  /** What it shows, for the table's legend. */
  title: string;
  /** The load tool, a script in bench/. */
  tool: "chat_load.ts" | "calc_load.ts" | "udp_load.ts";
  args: string[];
  quickArgs: string[];
  /** The load tool's own time limit in seconds (it ends itself then). */
  timeout: number;
  quickTimeout: number;
  /** The result field that is the headline figure, and its unit. */
  metric: string;
  unit: string;
  /** True when a smaller headline figure is better (memory). */
  lowerIsBetter?: boolean;
  /** Connections the load tool and server hold at once (open files needed). */
  connections: number;
}

const split = (flags: string) => flags.split(" ");

/** Every workload, in the order they run. */
export const WORKLOADS: readonly Workload[] = [
  {
    name: "fanout",
    kind: "chat",
    title:
      "chat fan-out: 100 clients + 10 senders x 500 messages of 100 B, window 50",
    tool: "chat_load.ts",
    args: split(
      "--mode fanout --clients 100 --senders 10 --messages 500 --size 100",
    ),
    quickArgs: split(
      "--mode fanout --clients 8 --senders 2 --messages 20 --size 100",
    ),
    timeout: 60,
    quickTimeout: 10,
    metric: "deliveries_per_s",
    unit: "deliveries/s",
    connections: 110,
  },
  {
    name: "fanout-wide",
    kind: "chat",
    title: "chat fan-out: 1000 clients + 1 sender x 200 messages of 100 B",
    tool: "chat_load.ts",
    args: split(
      "--mode fanout --clients 1000 --senders 1 --messages 200 --size 100",
    ),
    quickArgs: split(
      "--mode fanout --clients 30 --senders 1 --messages 10 --size 100",
    ),
    timeout: 90,
    quickTimeout: 10,
    metric: "deliveries_per_s",
    unit: "deliveries/s",
    connections: 1001,
  },
  {
    name: "paced",
    kind: "chat",
    title:
      "chat paced: 100 clients + 10 senders x 200 messages at 20 msg/s each",
    tool: "chat_load.ts",
    args: split(
      "--mode fanout --clients 100 --senders 10 --messages 200 --size 100 --rate 20",
    ),
    quickArgs: split(
      "--mode fanout --clients 5 --senders 2 --messages 5 --size 100 --rate 50",
    ),
    timeout: 60,
    quickTimeout: 10,
    metric: "p99_ms",
    unit: "ms p99",
    lowerIsBetter: true,
    connections: 110,
  },
  {
    name: "storm",
    kind: "chat",
    title: "chat connect storm: 2000 x (connect, LOGIN, QUIT), 100 at a time",
    tool: "chat_load.ts",
    args: split("--mode storm --clients 2000 --concurrency 100"),
    quickArgs: split("--mode storm --clients 40 --concurrency 10"),
    timeout: 60,
    quickTimeout: 10,
    metric: "logins_per_s",
    unit: "logins/s",
    connections: 100,
  },
  {
    name: "idle",
    kind: "chat",
    title:
      "chat idle: 5000 clients logged in and silent; server memory per client",
    tool: "chat_load.ts",
    args: split("--mode idle --clients 5000 --concurrency 100 --hold 20"),
    quickArgs: split("--mode idle --clients 30 --concurrency 10 --hold 0.2"),
    timeout: 300,
    quickTimeout: 20,
    metric: "kib_per_client_held",
    unit: "KiB/client",
    lowerIsBetter: true,
    connections: 5000,
  },
  {
    name: "calc-seq",
    kind: "calc",
    title:
      "calculator: 50 sessions x 1000 requests, one at a time, every answer checked",
    tool: "calc_load.ts",
    args: split("--clients 50 --requests 1000 --pipeline 1"),
    quickArgs: split("--clients 3 --requests 60 --pipeline 1"),
    timeout: 60,
    quickTimeout: 10,
    metric: "answers_per_s",
    unit: "answers/s",
    connections: 50,
  },
  {
    name: "calc-pipe",
    kind: "calc",
    title:
      "calculator: 50 sessions x 1000 requests, 8 in flight, every answer checked",
    tool: "calc_load.ts",
    args: split("--clients 50 --requests 1000 --pipeline 8"),
    quickArgs: split("--clients 3 --requests 60 --pipeline 8"),
    timeout: 60,
    quickTimeout: 10,
    metric: "answers_per_s",
    unit: "answers/s",
    connections: 50,
  },
  {
    name: "udp",
    kind: "time",
    title: "UDP date/time: 64 requests outstanding for 15 s",
    tool: "udp_load.ts",
    args: split("--window 64 --duration 15"),
    quickArgs: split("--window 4 --duration 0.5"),
    timeout: 30,
    quickTimeout: 10,
    metric: "answers_per_s",
    unit: "answers/s",
    connections: 64,
  },
];
