/**
 * UDP date/time load generator (CONTRACT 3.2) on 127.0.0.1: `--window`
 * sockets each keep one request outstanding for `--duration` seconds, so
 * every answer belongs to the request its socket sent. A request with no
 * answer after `--req-timeout` seconds is lost: its socket is replaced (a
 * late answer can never count for a later request) and the next goes out.
 * Prints one JSON line. bench/main.ts runs it; by hand:
 *
 * ```sh
 * deno run -A --unstable-net bench/udp_load.ts --port 12001 --window 64 --duration 15
 * ```
 *
 * ```
 * C: SEND_TIME      S: 14:03:59        (checked: HH:MM:SS)
 * C: SEND_DATE      S: 2025-11-25      (checked: YYYY-MM-DD)
 * ```
 *
 * Exit 0 when nothing was lost and every answer had the right shape.
 *
 * @module
 */

import { parseFlags, runMain, UsageError } from "../lib/cli.ts";
import {
  closeQuietly,
  emit,
  LOAD_FLAGS,
  LOOPBACK,
  type Report,
  requirePort,
  sleep,
  withDeadline,
} from "./load_common.ts";
import {
  cpuMeter,
  type CpuUse,
  nowUs,
  round,
  rssKiB,
  Samples,
} from "./stats.ts";

const COMMAND = {
  name: "bench udp_load",
  summary:
    "UDP date/time load generator: a window of outstanding requests; prints one JSON line.",
  flags: {
    ...LOAD_FLAGS,
    window: {
      kind: "integer",
      default: 64,
      min: 1,
      max: 4096,
      help: "requests outstanding at once",
    },
    duration: {
      kind: "number",
      default: 15,
      min: 0.1,
      help: "seconds to send for",
    },
    request: {
      kind: "string",
      default: "SEND_TIME",
      choices: ["SEND_TIME", "SEND_DATE"],
      help: "what to ask",
    },
    "req-timeout": {
      kind: "number",
      default: 1,
      min: 0.01,
      help: "seconds before a request counts as lost",
    },
  },
} as const;

const ANSWER_SHAPE: Record<string, RegExp> = {
  SEND_TIME: /^\d\d:\d\d:\d\d$/,
  SEND_DATE: /^\d{4}-\d\d-\d\d$/,
};

/** One outstanding request at a time, on its own socket. */
class Slot {
  socket = openSocket();
  /** When the outstanding request went out (0: none). */
  sentAt = 0;
  /** Set by the sweeper when the outstanding request ran out of time. */
  expired = false;
}

function openSocket(): Deno.DatagramConn {
  return Deno.listenDatagram({ hostname: LOOPBACK, port: 0, transport: "udp" });
}

/** A whole run: every slot sends until the duration is over. */
class UdpRun {
  readonly latency = new Samples();
  readonly slots: Slot[];
  #sent = 0;
  #answered = 0;
  /** Answers that arrived within the duration: the rate counts only these. */
  #answeredInTime = 0;
  #lost = 0;
  #bad = 0;
  #badExample: string | null = null;
  #stopping = false;
  #t0 = 0;
  #t1 = 0;
  #cpu?: () => CpuUse;
  #cpuResult?: CpuUse;
  readonly #request: Uint8Array;
  readonly #shape: RegExp;

  constructor(readonly o: ReturnType<typeof parseFlags<typeof COMMAND>>) {
    this.slots = Array.from({ length: o.window }, () => new Slot());
    this.#request = new TextEncoder().encode(o.request);
    this.#shape = ANSWER_SHAPE[o.request];
  }

  async run(): Promise<void> {
    this.#t0 = nowUs();
    this.#cpu = cpuMeter(this.o.pid);
    const sweeper = setInterval(() => this.#sweep(), 20);
    const loops = this.slots.map((slot) => this.#loop(slot));
    await sleep(this.o.duration * 1000);
    this.#stopping = true;
    this.#t1 = nowUs();
    this.#cpuResult = this.#cpu();
    await Promise.all(loops); // each waits for its last answer, or its timeout
    clearInterval(sweeper);
  }

  close(): void {
    for (const slot of this.slots) closeQuietly(slot.socket);
  }

  async #loop(slot: Slot): Promise<void> {
    const decoder = new TextDecoder();
    const buffer = new Uint8Array(2048);
    const server = {
      transport: "udp" as const,
      hostname: LOOPBACK,
      port: this.o.port,
    };
    while (!this.#stopping) {
      slot.expired = false;
      slot.sentAt = nowUs();
      this.#sent++;
      try {
        const reply = slot.socket.receive(buffer); // waiting before sending saves a turn
        reply.catch(() => {}); // if send fails, its failure is the one reported
        await slot.socket.send(this.#request, server);
        const [data] = await reply;
        this.latency.add((nowUs() - slot.sentAt) / 1000);
        this.#answered++;
        if (!this.#stopping) this.#answeredInTime++;
        const answer = decoder.decode(data).trim();
        if (!this.#shape.test(answer)) {
          this.#bad++;
          this.#badExample ??= answer.slice(0, 64);
        }
      } catch (error) {
        if (!slot.expired) throw error; // not ours: a bug
        this.#lost++;
        slot.socket = openSocket();
      }
      slot.sentAt = 0;
    }
  }

  /** Close the socket of every request past its timeout; its loop counts it lost. */
  #sweep(): void {
    const limit = nowUs() - this.o["req-timeout"] * 1e6;
    for (const slot of this.slots) {
      if (slot.sentAt && slot.sentAt < limit && !slot.expired) {
        slot.expired = true;
        closeQuietly(slot.socket);
      }
    }
  }

  report(): Report {
    const elapsed = ((this.#t1 || nowUs()) - this.#t0) / 1e6;
    const error = this.#lost
      ? `${this.#lost} requests lost`
      : this.#bad
      ? `${this.#bad} answers of the wrong shape, e.g. ${
        JSON.stringify(this.#badExample)
      }`
      : null;
    const rss = rssKiB(this.o.pid);
    return {
      mode: "udp",
      request: this.o.request,
      window: this.o.window,
      duration_s: this.o.duration,
      ...(error ? { error } : {}),
      sent: this.#sent,
      answered: this.#answered,
      lost: this.#lost,
      bad_answers: this.#bad,
      elapsed_s: round(elapsed),
      answers_per_s: Math.round(this.#answeredInTime / elapsed),
      ops: this.#answered,
      ...this.latency.summary(),
      server_rss_mb: rss == null ? null : round(rss / 1024, 1),
      ...(this.#cpuResult ?? this.#cpu?.()),
    };
  }
}

async function main(): Promise<number> {
  const flags = parseFlags(COMMAND);
  requirePort(flags.port);
  if (flags.timeout <= flags.duration + flags["req-timeout"]) {
    throw new UsageError(
      "--timeout must be longer than --duration plus --req-timeout",
    );
  }
  const run = new UdpRun(flags);
  const end = await withDeadline(run.run(), flags.timeout);
  const code = emit(run.report(), end);
  run.close();
  return code;
}

if (import.meta.main) await runMain(main, COMMAND);
