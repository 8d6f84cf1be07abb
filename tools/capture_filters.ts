/**
 * The Wireshark filters of the lab, in one place: docs/wireshark.md quotes
 * them, `deno task capture` uses them, and tests/capture_test.ts captures real
 * sessions with them, so the guide cannot drift from what works.
 *
 * Two kinds of filter, two syntaxes:
 * - a capture filter (BPF, `tshark -f`, Wireshark's "capture filter" box)
 *   decides which packets are recorded at all: `tcp port 12002`;
 * - a display filter (`tshark -Y`, Wireshark's filter bar) picks among the
 *   recorded ones: `tcp.port == 12002`, `tcp.flags.syn == 1`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { captureFilter, displayFilter, EXERCISES } from "./capture_filters.ts";
 * const knock = EXERCISES["tcp-knock"];
 * assert(captureFilter(knock) === "tcp port 12002");
 * assert(displayFilter(knock) === "tcp.port == 12002");
 * ```
 *
 * @module
 */

/** One exercise as the network sees it: a transport and a port. */
export interface Exercise {
  transport: "udp" | "tcp";
  port: number;
  /** What a person runs to make traffic for it. */
  run: string;
}

/** Every exercise by the name `deno task capture` takes, default ports. */
export const EXERCISES = {
  "udp-hello": {
    transport: "udp",
    port: 12000,
    run: "deno task udp-hello-server, then deno task udp-hello-client",
  },
  "udp-time": {
    transport: "udp",
    port: 12001,
    run: "deno task udp-time-server, then deno task udp-time-client --count 3",
  },
  "tcp-knock": {
    transport: "tcp",
    port: 12002,
    run: "deno task tcp-knock-server, then deno task tcp-knock-client",
  },
  "calc": {
    transport: "tcp",
    port: 12003,
    run: "deno task calc-server, then deno task calc-client",
  },
  "chat": {
    transport: "tcp",
    port: 5000,
    run: "deno task chat-server, then deno task chat-client (twice)",
  },
} as const satisfies Record<string, Exercise>;

/** A name of {@linkcode EXERCISES}. */
export type ExerciseName = keyof typeof EXERCISES;

/** Display filter: the packets that open a TCP connection (SYN, SYN-ACK). */
export const SYN_FILTER = "tcp.flags.syn == 1";

/** Display filter: the packets that close a TCP connection (one per side). */
export const FIN_FILTER = "tcp.flags.fin == 1";

/** Display filter: TCP packets that carry data (the lines sent). */
export const PAYLOAD_FILTER = "tcp.len > 0";

/**
 * Capture filter (BPF) for an exercise, optionally on another port.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { captureFilter, EXERCISES } from "./capture_filters.ts";
 * assert(captureFilter(EXERCISES.chat, 5001) === "tcp port 5001");
 * ```
 */
export function captureFilter(
  exercise: Exercise,
  port = exercise.port,
): string {
  return `${exercise.transport} port ${port}`;
}

/**
 * Display filter (Wireshark's filter bar) for an exercise's packets.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { displayFilter, EXERCISES } from "./capture_filters.ts";
 * assert(displayFilter(EXERCISES["udp-time"]) === "udp.port == 12001");
 * ```
 */
export function displayFilter(
  exercise: Exercise,
  port = exercise.port,
): string {
  return `${exercise.transport}.port == ${port}`;
}

/**
 * tshark's `-d` ("Decode As") rule that shows an exercise's payload as plain
 * data. Wireshark guesses a protocol from the port number: tshark 4.0 reads
 * UDP 12000-12003 as LLC, which garbles our text, and may try TCP 5000 as
 * GSM over IP (our chat lines fail its checks and show as TCP there, but
 * what each version guesses varies, so every exercise gets the rule).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeAsData, EXERCISES } from "./capture_filters.ts";
 * assert(decodeAsData(EXERCISES.chat) === "tcp.port==5000,data");
 * ```
 */
export function decodeAsData(exercise: Exercise, port = exercise.port): string {
  return `${exercise.transport}.port==${port},data`;
}

/**
 * The loopback interface's name for tshark on this system: `lo` on Linux,
 * `lo0` on macOS, Npcap's loopback adapter on Windows.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loopbackInterface } from "./capture_filters.ts";
 * assert(loopbackInterface("linux") === "lo");
 * ```
 */
export function loopbackInterface(os: typeof Deno.build.os = Deno.build.os) {
  if (os === "darwin") return "lo0";
  if (os === "windows") return "\\Device\\NPF_Loopback";
  return "lo";
}
