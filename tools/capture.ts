/**
 * Watches one exercise's packets on the loopback interface with tshark
 * (Wireshark's command-line tool), one line per packet plus the text it
 * carries, until Ctrl+C. The filters are the ones docs/wireshark.md teaches.
 *
 * Run: deno task capture tcp-knock     (then, in other terminals: deno task tcp-knock-server,
 *                                      deno task tcp-knock-client; the tcp-knock pair takes a free
 *                                      port, not the 12002 the filter watches)
 *      deno task capture calc --port 12345   (its hint then says calc-server --port 12345, ...)
 * Directly: deno run --allow-run --allow-read tools/capture.ts tcp-knock
 * Exercises: udp-hello, udp-time, tcp-knock, calc, chat. Needs tshark, and
 * the right to capture (root, or the wireshark group on Linux).
 *
 * @module
 */

import {
  FatalError,
  parseFlags,
  printLine,
  runMain,
  UsageError,
} from "../lib/cli.ts";
import { LineReader, streamSource } from "../lib/lines.ts";
import { onShutdown } from "../lib/net.ts";
import { quote } from "../lib/printable.ts";
import {
  captureFilter,
  decodeAsData,
  type Exercise,
  type ExerciseName,
  EXERCISES,
  loopbackInterface,
} from "./capture_filters.ts";

const NAMES = Object.keys(EXERCISES).join(", ");

const COMMAND = {
  name: "capture EXERCISE",
  summary:
    `Show one exercise's packets on the loopback interface with tshark (EXERCISE: ${NAMES}).`,
  flags: {
    port: {
      kind: "port",
      placeholder: "P",
      min: 1, // 0 means "any free port" to a server: no packet carries it
      help: "the port the exercise uses (default: its usual port)",
    },
    interface: {
      kind: "string",
      placeholder: "IF",
      default: loopbackInterface(),
      help: `interface to capture on (default ${loopbackInterface()})`,
    },
    count: {
      kind: "integer",
      placeholder: "N",
      min: 1,
      help: "stop after N packets (default: at Ctrl+C)",
    },
  },
} as const;

/** tshark prints these fields, tab-separated, one packet a line. */
const FIELDS = [
  "frame.number",
  "_ws.col.Source",
  "_ws.col.Destination",
  "_ws.col.Protocol",
  "_ws.col.Info",
  "tcp.payload",
  "udp.payload",
];

/**
 * Longest line tshark prints for one packet: its payload in hex, two
 * characters a byte, and a packet on the loopback carries up to 64 KiB.
 */
const PACKET_LINE_BYTES = 1 << 20;

/**
 * tshark's stderr lines that tell a student nothing: its start-up chatter
 * (our first line already says what is captured where) and the empty
 * message it ends with. Only these exact lines are dropped: anything else,
 * such as "You do not have permission to capture on device", or words a
 * newer tshark prints, is passed on, and the packet count too.
 */
const TSHARK_CHATTER = [
  /^Running as user ".*" and group ".*"\. This could be dangerous\.$/,
  /^Capturing on '.*'$/,
  /^ \*\* \(tshark:\d+\) [\d:.]+ \[Main MESSAGE\] -- Capture started\.$/,
  /^ \*\* \(tshark:\d+\) [\d:.]+ \[Main MESSAGE\] -- File: ".*"$/,
  /^tshark: $/,
];

async function main(): Promise<number> {
  const { exercise, flags } = parseCommandLine(Deno.args);
  const filter = captureFilter(EXERCISES[exercise], flags.port);
  const decodeAs = decodeAsData(EXERCISES[exercise], flags.port);
  printLine(
    `Capturing '${filter}' on ${flags.interface} (Ctrl+C to stop). ` +
      `Make traffic in another terminal: ${
        trafficHint(EXERCISES[exercise], flags.port)
      }`,
  );
  const tshark = spawnTshark(tsharkArgs({ ...flags, filter, decodeAs }));
  const messages = passOnMessages(tshark.stderr);
  // Ctrl+C (or SIGTERM) stops tshark, which prints a count and exits; in a
  // terminal it gets Ctrl+C itself too, and a second SIGINT does no harm.
  const stopTshark = () => {
    try {
      tshark.kill("SIGINT");
    } catch {
      // it has exited already
    }
  };
  const removeHandlers = onShutdown(stopTshark);
  try {
    const packets = new LineReader(streamSource(tshark.stdout), {
      maxBytes: PACKET_LINE_BYTES,
    });
    for await (const line of packets) {
      for (const out of formatPacket(line.split("\t"))) printLine(out);
    }
    const { code } = await tshark.status;
    if (code !== 0) {
      throw new FatalError(
        `tshark could not capture on ${flags.interface} (see its message above; ` +
          "on Linux capture as root or as a member of the wireshark group)",
      );
    }
    return 0;
  } finally {
    removeHandlers();
    stopTshark(); // still running if our stdout was refused: not left behind
    await tshark.status;
    await messages; // all of tshark's words, before runMain prints ours
  }
}

/**
 * The hint's commands, on `port` when the capture is on another port: a
 * student who copies them makes traffic where the filter looks. They are
 * the server and client tasks, each of which takes --port; never a pair
 * task (`deno task tcp-knock`), which picks a free port and refuses --port.
 */
function trafficHint(exercise: Exercise, port: number | undefined): string {
  if (port === undefined) return exercise.run;
  return exercise.run.replaceAll(
    /deno task [\w-]+/g,
    (task) => `${task} --port ${port}`,
  );
}

/** The exercise name comes first; flags follow (or `--help` alone). */
function parseCommandLine(args: string[]) {
  const [first, ...rest] = args;
  if (first === undefined || first.startsWith("-")) {
    parseFlags(COMMAND, args); // prints --help, or rejects a bad flag
    throw new UsageError(`Name an exercise: ${NAMES}`);
  }
  if (!Object.hasOwn(EXERCISES, first)) {
    throw new UsageError(`Unknown exercise "${first}": choose one of ${NAMES}`);
  }
  return { exercise: first as ExerciseName, flags: parseFlags(COMMAND, rest) };
}

/** tshark's command line: line-buffered fields, no name lookups. */
export function tsharkArgs(options: {
  interface: string;
  filter: string;
  decodeAs: string;
  count?: number;
}): string[] {
  const args = ["-i", options.interface, "-f", options.filter, "-l", "-n"];
  args.push("-d", options.decodeAs, "-T", "fields");
  args.push("-E", "separator=/t", "-E", "occurrence=f");
  for (const field of FIELDS) args.push("-e", field);
  if (options.count !== undefined) args.push("-c", String(options.count));
  return args;
}

function spawnTshark(args: string[]): Deno.ChildProcess {
  try {
    return new Deno.Command("tshark", {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped", // through passOnMessages()
    }).spawn();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new FatalError(
        "tshark is not installed (install Wireshark's command-line tool, " +
          "e.g. sudo apt-get install tshark, or follow docs/wireshark.md in Wireshark itself)",
      );
    }
    throw error;
  }
}

/** Copy tshark's stderr to ours as it comes, less {@linkcode isChatter} lines. */
async function passOnMessages(stderr: ReadableStream<Uint8Array>) {
  const lines = new LineReader(streamSource(stderr), { maxBytes: 1 << 16 });
  for await (const line of lines) {
    if (!isChatter(line)) console.error(line);
  }
}

/**
 * Whether a line of tshark's stderr is harmless chatter, not worth a
 * student's attention.
 *
 *     Running as user "root" and group "root". This could be dangerous.   chatter
 *     tshark: You do not have permission to capture on device "lo".      shown
 */
export function isChatter(line: string): boolean {
  return TSHARK_CHATTER.some((chatter) => chatter.test(line));
}

/**
 * One tshark field line as a person reads it: the packet summary and, when
 * it carries bytes, their text.
 *
 *     4  127.0.0.1 → 127.0.0.1  TCP  50330 → 12002 [PSH, ACK] Seq=1 Ack=1 Len=12
 *        data: "Knock knock\n"
 */
export function formatPacket(fields: string[]): string[] {
  const [number, source, destination, protocol, info, tcp, udp] = fields;
  const lines = [
    `${number.padStart(4)}  ${source} → ${destination}  ${protocol}  ${info}`,
  ];
  const payload = tcp || udp;
  if (payload) lines.push(`      data: ${quote(hexToText(payload))}`);
  return lines;
}

/** `4b6e6f636b0a` (or `4b:6e:...`) -> `Knock\n`; bad UTF-8 shows as U+FFFD. */
export function hexToText(hex: string): string {
  const digits = hex.replace(/[^0-9a-f]/gi, "");
  const bytes = new Uint8Array(digits.length / 2);
  for (let i = 0; i < bytes.length; i++) {
    bytes[i] = parseInt(digits.slice(2 * i, 2 * i + 2), 16);
  }
  return new TextDecoder().decode(bytes);
}

if (import.meta.main) await runMain(main, { ...COMMAND, name: "capture" });
