/**
 * A classroom at its worst, all at once, against one chat server. While a
 * few clients talk and check that each gets every line of the others, in
 * order, the rest of the class misbehaves at the same time: logs in and
 * vanishes (QUIT, a reset, a half-close, a line cut off), takes names that
 * are taken or invalid, sends random bytes, invalid UTF-8, control
 * characters and over-long lines, stops reading, or floods the room. The
 * protocol tests check each of these alone; this one checks that together
 * they cost the well-behaved clients nothing.
 *
 * Every loop is bounded by a count. Each misbehaving client draws what it
 * does from its own seeded generator, so it misbehaves the same way in
 * every run (how the runs interleave is up to the machine).
 */

import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { mulberry32 } from "../bench/random.ts";
import { isConnectionLost } from "../lib/errors.ts";
import { ChatClient, chatServer, Names } from "./chat_support.ts";
import { hasControlChars, type Target } from "./support.ts";
import { TestClient } from "./tcp_support.ts";

const SEED = 20261127;
const TALKERS = 6;
const LINES_EACH = 150;
const FLOOD_LINES = 1500;
const ROUNDS = 40; // connections per misbehaving client

Deno.test(`a class misbehaving all at once costs the talkers nothing (seed ${SEED})`, async () => {
  await using server = chatServer();
  const names = new Names();
  const talkers: ChatClient[] = [];
  const stuck: ChatClient[] = [];
  try {
    for (let i = 0; i < TALKERS; i++) {
      talkers.push(await ChatClient.login(server.target, names, `talk${i}`));
    }
    // Members that never read: they must not hold up anyone.
    for (let i = 0; i < 3; i++) {
      stuck.push(await ChatClient.login(server.target, names, `stuck${i}`));
    }
    const flooder = await ChatClient.login(server.target, names, "flood");
    talkers.push(flooder); // read like the others; its lines are checked too

    const expected = new Map<string, number>(); // sender -> lines it says
    for (const talker of talkers) {
      expected.set(talker.name, talker === flooder ? FLOOD_LINES : LINES_EACH);
    }
    const heard = talkers.map((me) => listen(me, expected));
    const saying = talkers.map((me) =>
      me === flooder
        ? say(me, FLOOD_LINES, { perWrite: 100, padBytes: 200 })
        : say(me, LINES_EACH, { perWrite: 8, padBytes: 10 })
    );
    const mischief = [
      ...Array.from(
        { length: 3 },
        (_, k) => churn(server.target, names, k, mulberry32(SEED + k)),
      ),
      ...Array.from(
        { length: 2 },
        (_, k) =>
          garbage(
            server.target,
            names,
            k,
            talkers[0].name,
            mulberry32(SEED + 10 + k),
          ),
      ),
      impostor(server.target, talkers[0].name),
    ];
    // All awaited together: one that fails fails the test, none left behind.
    const [results] = await Promise.all([
      Promise.all(heard),
      ...saying,
      ...mischief,
    ]);

    for (const [i, result] of results.entries()) {
      strictEqual(result.outOfOrder, "", `${talkers[i].name}, seed ${SEED}`);
      deepStrictEqual(
        result.counts,
        new Map([...expected].filter(([from]) => from !== talkers[i].name)),
        `${talkers[i].name} heard everything, seed ${SEED}`,
      );
      ok(!result.controls, `${talkers[i].name} got ${result.controls}`);
    }
    // And the room still works for a newcomer.
    await using late = await ChatClient.login(server.target, names, "late");
    const who = await late.ask("WHO");
    for (const talker of talkers) ok(who.includes(` ${talker.name}`), who);
    for (const talker of talkers) {
      await talker.send("QUIT");
      await talker.waitFor("BYE");
    }
  } finally {
    for (const client of [...talkers, ...stuck]) client.close();
  }
});

/** What one talker heard from the others. */
interface Heard {
  /** Lines heard from each sender. */
  counts: Map<string, number>;
  /** The first line that came out of its sender's order, if any. */
  outOfOrder: string;
  /** The first line with a control character in it, if any. */
  controls: string;
}

/**
 * Read until every other talker's every line has come: `MSG <from> <n>
 * ...`, numbered from 0 per sender. Lines of the mischief (JOINED, LEFT,
 * their MSG and PRIVATE) are read and checked for control characters only.
 */
async function listen(
  me: ChatClient,
  expected: Map<string, number>,
): Promise<Heard> {
  const counts = new Map<string, number>();
  let missing = 0;
  for (const [from, n] of expected) if (from !== me.name) missing += n;
  let outOfOrder = "";
  let controls = "";
  while (missing > 0) {
    const line = await me.next(10_000).catch((error) => {
      const got = [...expected].filter(([from]) => from !== me.name)
        .map(([from, n]) => `${counts.get(from) ?? 0}/${n} from ${from}`);
      throw new Error(`${me.name} heard ${got.join(", ")}: ${error.message}`);
    });
    if (!controls && hasControlChars(line)) controls = JSON.stringify(line);
    const m = /^MSG (\S+) (\d+)( |$)/.exec(line);
    if (!m || !expected.has(m[1])) continue;
    const seen = counts.get(m[1]) ?? 0;
    if (Number(m[2]) !== seen && !outOfOrder) outOfOrder = line.slice(0, 60);
    counts.set(m[1], seen + 1);
    missing--;
  }
  return { counts, outOfOrder, controls };
}

/** Say `n` numbered lines, each padded with `padBytes`, `perWrite` to a write. */
async function say(
  me: ChatClient,
  n: number,
  { perWrite, padBytes }: { perWrite: number; padBytes: number },
): Promise<void> {
  const pad = "x".repeat(padBytes);
  for (let i = 0; i < n; i += perWrite) {
    let batch = "";
    for (let j = i; j < Math.min(n, i + perWrite); j++) {
      batch += `SAY ${j} ${pad}\n`;
    }
    await me.client.send(batch);
  }
}

/**
 * Log in (often under a name that is taken or invalid) and leave in one of
 * the rude ways, `ROUNDS` times.
 */
async function churn(
  target: Target,
  names: Names,
  k: number,
  random: () => number,
): Promise<void> {
  for (let round = 0; round < ROUNDS; round++) {
    await using client = await TestClient.connect(target);
    const name = pick(random, [
      names.of(`c${k}x${round}`),
      names.of("talk0"), // taken
      "bad name!",
      "n".repeat(40),
    ]);
    await client.send(`LOGIN ${name}\n`);
    switch (pick(random, ["quit", "close", "half", "cut"])) {
      case "quit": // polite, reading to the end
        await client.send("QUIT\n");
        while (await client.readLine() !== null) { /* to BYE and the close */ }
        break;
      case "close": // gone with the answer unread: the kernel resets
        break;
      case "half": // last words, then the end of its stream; reads to the end
        await client.send("SAY bye\nWHO\n");
        await client.conn.closeWrite();
        while (await client.readLine() !== null) { /* answers, then close */ }
        break;
      case "cut": // half a line, then gone
        await client.send("SAY a line that never");
        break;
    }
  }
}

/**
 * Connections that send what no client should, `ROUNDS` of them; some
 * whisper escape sequences to `victim`.
 */
async function garbage(
  target: Target,
  names: Names,
  k: number,
  victim: string,
  random: () => number,
): Promise<void> {
  const encoder = new TextEncoder();
  for (let round = 0; round < ROUNDS; round++) {
    await using client = await TestClient.connect(target);
    const kind = pick(random, ["bytes", "long", "utf8", "controls"]);
    const bytes = kind === "bytes"
      ? Uint8Array.from(
        { length: 1 + Math.floor(random() * 3000) },
        () => Math.floor(random() * 256),
      )
      : kind === "long"
      ? encoder.encode(
        `LOGIN ${names.of(`g${k}x${round}`)}\nSAY ${"y".repeat(5000)}\n`,
      )
      : kind === "utf8"
      ? Uint8Array.of(
        0x4c,
        0x4f,
        0x47,
        0x49,
        0x4e,
        0x20,
        0xff,
        0x0a,
        0x00,
        0x0d,
      )
      : encoder.encode(
        `LOGIN ${
          names.of(`e${k}x${round}`)
        }\r\nSAY \x1b[31mred\x07\r\nTELL ${victim} \x1b[2Jwiped\x00\r\n`,
      );
    try {
      await client.send(bytes);
    } catch (error) {
      // The server may close first (a line too long): its right.
      if (!isConnectionLost(error)) throw error;
    }
  }
}

/** Someone who keeps trying to log in as a talker and to talk without a name. */
async function impostor(target: Target, taken: string): Promise<void> {
  await using client = await TestClient.connect(target);
  for (let round = 0; round < ROUNDS; round++) {
    // The reasons' words are the server's own (CONTRACT 3.5): ERROR is all.
    ok((await client.ask("SAY hi")).startsWith("ERROR"));
    ok((await client.ask(`LOGIN ${taken}`)).startsWith("ERROR"));
  }
}

function pick<T>(random: () => number, choices: T[]): T {
  return choices[Math.floor(random() * choices.length)];
}
