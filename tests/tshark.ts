/**
 * tshark for tests/capture_test.ts: capture on loopback into a file while
 * traffic is made, then read the file back through display filters.
 *
 * "Capturing on 'Loopback: lo'" can come out a moment before the capture
 * really sees packets, so {@linkcode startCapture} also records a probe
 * port and sends itself datagrams there until one shows up in the capture.
 * The probe is outside the exercise's port, so the guide's display filters
 * never show it.
 *
 * @module
 */

import assert from "node:assert/strict";
import { LineReader, streamSource } from "../lib/lines.ts";
import { loopbackInterface } from "../tools/capture_filters.ts";
import { processTree } from "./support.ts";

/** Bits of `tcp.flags`. */
export const FLAG = { FIN: 0x01, SYN: 0x02, ACK: 0x10 } as const;

const WAIT_MS = 10_000;

/** A running capture; dispose it to stop tshark and delete the file. */
export interface Capture extends AsyncDisposable {
  /** Wait until `enough(flags of the packets so far)`, stop; the file. */
  stopWhen(enough: (tcpFlags: number[]) => boolean): Promise<string>;
}

/** Start `tshark -i lo -f FILTER -w FILE`; resolves once it sees packets. */
export async function startCapture(filter: string): Promise<Capture> {
  const dir = await Deno.makeTempDir({ prefix: "lab-capture-" });
  const file = `${dir}/capture.pcapng`;
  const probe = Deno.listenDatagram({
    hostname: "127.0.0.1",
    port: 0,
    transport: "udp",
  });
  const probeAddr = probe.addr as Deno.NetAddr;
  const tshark = new Deno.Command("tshark", {
    args: [
      ...["-i", loopbackInterface(), "-w", file],
      ...["-f", `(${filter}) or (udp dst port ${probeAddr.port})`],
      // -P -T fields: also print each packet as it is written (-l: at once).
      ...["-P", "-l", "-T", "fields", "-e", "tcp.flags", "-e", "udp.dstport"],
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const state = watch(tshark, probeAddr.port);
  const stop = async () => {
    try {
      tshark.kill("SIGINT");
    } catch {
      // already stopped
    }
    await tshark.status;
    await state.done;
  };
  const dispose = async () => {
    await stop();
    probe.close();
    await Deno.remove(dir, { recursive: true });
  };
  try {
    // Not seen in time: tshark is stuck. SIGKILL goes to the dumpcap it
    // captures with too, which would otherwise capture on by itself.
    await untilProbeSeen(probe, state, () => {
      for (const pid of processTree(tshark.pid).reverse()) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch {
          // gone already
        }
      }
    });
  } catch (error) {
    await dispose();
    throw error;
  }
  return {
    async stopWhen(enough) {
      const timer = setTimeout(() => tshark.kill("SIGINT"), WAIT_MS);
      try {
        while (!enough(state.flags) && !state.ended) await state.changed();
      } finally {
        clearTimeout(timer);
      }
      await stop();
      assert.ok(enough(state.flags), `capture ended early:\n${state.log}`);
      return file;
    },
    [Symbol.asyncDispose]: dispose,
  };
}

/** What tshark has shown so far, updated as its lines arrive. */
interface Watched {
  flags: number[];
  probeSeen: boolean;
  ended: boolean;
  log: string;
  changed(): Promise<void>;
  done: Promise<void>;
}

function watch(tshark: Deno.ChildProcess, probePort: number): Watched {
  let signal = Promise.withResolvers<void>();
  const notify = () => {
    signal.resolve();
    signal = Promise.withResolvers<void>();
  };
  const state: Watched = {
    flags: [],
    probeSeen: false,
    ended: false,
    log: "",
    changed: () => signal.promise,
    done: Promise.resolve(),
  };
  const packets = (async () => {
    for await (const line of lines(tshark.stdout)) {
      const [flags, udpDst] = line.split("\t");
      if (udpDst === String(probePort)) state.probeSeen = true;
      else state.flags.push(parseInt(flags || "0", 16));
      notify();
    }
  })();
  const messages = (async () => {
    for await (const line of lines(tshark.stderr)) state.log += line + "\n";
  })();
  state.done = Promise.all([packets, messages]).then(() => {
    state.ended = true;
    notify();
  });
  return state;
}

function lines(stream: ReadableStream<Uint8Array>) {
  return new LineReader(streamSource(stream), { maxBytes: 1 << 16 });
}

/** Send probe datagrams every 100 ms until the capture shows one. */
async function untilProbeSeen(
  probe: Deno.DatagramConn,
  state: Watched,
  giveUp: () => void,
) {
  const deadline = Date.now() + WAIT_MS;
  const ping = new TextEncoder().encode("probe");
  while (!state.probeSeen && !state.ended) {
    if (Date.now() > deadline) giveUp();
    await probe.send(ping, probe.addr);
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      state.changed(),
      new Promise((resolve) => timer = setTimeout(resolve, 100)),
    ]);
    clearTimeout(timer);
  }
  assert.ok(state.probeSeen, `tshark did not start capturing:\n${state.log}`);
}

/** `tshark -r FILE -Y FILTER -T fields -e ...`: one row of fields a packet. */
export async function readBack(
  file: string,
  filter: string,
  fields: string[],
): Promise<string[][]> {
  const { success, stdout, stderr } = await new Deno.Command("tshark", {
    args: ["-r", file, "-Y", filter, "-T", "fields", "-E", "separator=/t"]
      .concat(fields.flatMap((f) => ["-e", f])),
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(success, new TextDecoder().decode(stderr));
  return new TextDecoder().decode(stdout).split("\n").filter((l) => l !== "")
    .map((l) => l.split("\t"));
}

/** Why tshark cannot capture on loopback here, or `undefined` when it can. */
export async function whyTsharkUnavailable(): Promise<string | undefined> {
  let interfaces: string;
  try {
    const { stdout } = await new Deno.Command("tshark", {
      args: ["-D"],
      stdout: "piped",
      stderr: "null",
    }).output();
    interfaces = new TextDecoder().decode(stdout);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      return "tshark is not installed (apt-get install tshark)";
    }
    throw error;
  }
  if (!interfaces.includes(loopbackInterface())) {
    return `tshark cannot capture on ${loopbackInterface()} (needs root or the wireshark group)`;
  }
  return undefined;
}
