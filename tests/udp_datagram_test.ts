/**
 * udp/datagram.ts: how a received datagram is shown, address
 * comparison, which datagrams a server leaves unanswered, server lookup,
 * and the client's inbox of answers.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { FatalError } from "../lib/cli.ts";
import { quote } from "../lib/printable.ts";
import {
  Inbox,
  isLabAnswer,
  isOk,
  isOwnAddress,
  lookupServer,
  openClientSocket,
  repeatingEncoder,
  sameAddr,
  sameBytes,
  showDatagram,
  whyNotAnswer,
} from "../udp/datagram.ts";
import { hasControlChars } from "./support.ts";
import { HAS_IPV6, TestSocket } from "./udp_support.ts";

const encode = (text: string) => new TextEncoder().encode(text);
const udp = (hostname: string, port: number): Deno.NetAddr => ({
  transport: "udp",
  hostname,
  port,
});

Deno.test("showDatagram()", async (t) => {
  await t.step("show a datagram quoted, cut after 60 characters", () => {
    assert.equal(
      showDatagram(encode("SEND_DATE\n")),
      String.raw`"SEND_DATE\n"`,
    );
    assert.equal(
      showDatagram(encode('\x1b[2J say "hi" \\o/ \u202e')),
      String.raw`"\x1b[2J say \"hi\" \\o/ \u{202e}"`,
    );
    assert.equal(showDatagram(encode("")), `""`);
    assert.equal(showDatagram(encode("é".repeat(60))), `"${"é".repeat(60)}"`);
    assert.equal(
      showDatagram(encode("A".repeat(65507))),
      `"${"A".repeat(60)}…" (65507 bytes)`,
    );
    assert.equal(
      showDatagram(new Uint8Array([0xff, 0x41])),
      "(2 bytes, not UTF-8)",
    );
  });

  await t.step(
    "property: short printable ASCII is shown as the general path shows it",
    () => {
      // showDatagram() skips decoding and escaping for such text.
      const ascii = fc.string({
        unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) =>
          String.fromCharCode(c)
        ),
        maxLength: 70,
      });
      fc.assert(fc.property(ascii, (text) => {
        const chars = [...text];
        const expected = chars.length <= 60
          ? quote(text)
          : `${quote(`${text.slice(0, 60)}…`)} (${text.length} bytes)`;
        assert.equal(showDatagram(encode(text)), expected);
      }));
      assert.equal(showDatagram(encode("a\\b")), String.raw`"a\\b"`);
      assert.equal(showDatagram(encode('a"b')), String.raw`"a\"b"`);
    },
  );

  await t.step("property: what is shown has no control characters", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (data) => {
      const shown = showDatagram(data);
      return !hasControlChars(shown) && [...shown].length < 100;
    }));
  });
});

Deno.test("sameBytes() compares every byte and the length", () => {
  assert.ok(sameBytes(encode("SEND_TIME"), encode("SEND_TIME")));
  assert.ok(sameBytes(new Uint8Array(), new Uint8Array()));
  assert.ok(!sameBytes(encode("SEND_TIMe"), encode("SEND_TIME")));
  assert.ok(!sameBytes(encode("SEND_TIME\n"), encode("SEND_TIME")));
  assert.ok(!sameBytes(encode("SEND_TIM"), encode("SEND_TIME")));
  const buffer = encode("xSEND_TIMEx");
  assert.ok(sameBytes(buffer.subarray(1, 10), encode("SEND_TIME")));
});

Deno.test("repeatingEncoder() encodes UTF-8, a repeated text once", () => {
  const encode2 = repeatingEncoder();
  const first = encode2("09:26:53");
  assert.deepEqual(first, encode("09:26:53"));
  assert.equal(encode2("09:26:53"), first); // the same bytes, not a copy
  assert.deepEqual(encode2("é"), encode("é"));
  assert.deepEqual(encode2("09:26:53"), first);
});

Deno.test("sameAddr() compares host and port, however the host is written", () => {
  assert.ok(sameAddr(udp("127.0.0.1", 5), udp("127.0.0.1", 5)));
  assert.ok(!sameAddr(udp("127.0.0.1", 5), udp("127.0.0.1", 6)));
  assert.ok(!sameAddr(udp("127.0.0.2", 5), udp("127.0.0.1", 5)));
  assert.ok(sameAddr(udp("::ffff:127.0.0.1", 5), udp("127.0.0.1", 5)));
  assert.ok(sameAddr(udp("0:0::1", 5), udp("::1", 5)));
  assert.ok(sameAddr(udp("FE80::1", 5), udp("fe80::1", 5)));
  assert.ok(!sameAddr(udp("::1", 5), udp("127.0.0.1", 5)));
  assert.ok(
    !sameAddr({ transport: "tcp", hostname: "::1", port: 5 }, udp("::1", 5)),
  );
});

Deno.test("isLabAnswer() knows the servers' answers, and nothing else", () => {
  const answers = [
    "Ok",
    " Ok\n",
    "ERROR",
    "ERROR unknown request, send SEND_DATE or SEND_TIME",
    "ERROR: from another lab's server",
    "ERROR two\nlines",
    "2026-01-31",
    "09:26:53",
    "\t12:00:00\r\n",
  ];
  for (const text of answers) assert.ok(isLabAnswer(encode(text)), text);
  const requests = [
    "",
    " ",
    "ok",
    "OK",
    "Ok!",
    "Okay",
    "Ok Ok",
    "error: not ours",
    "An ERROR",
    "SEND_DATE",
    "send_time",
    "2026-1-31",
    "12:00",
    "12:00:00 PM",
    "I could tell you a UDP joke but I'm not sure you'll get it.",
  ];
  for (const text of requests) assert.ok(!isLabAnswer(encode(text)), text);
  assert.ok(!isLabAnswer(new Uint8Array([0x4f, 0x6b, 0xff])), "Ok + 0xff");
});

Deno.test("isOwnAddress() recognises the server's own address", async (t) => {
  await t.step("bound to one address: that address and port", () => {
    const self = udp("127.0.0.1", 12001);
    assert.ok(isOwnAddress(udp("127.0.0.1", 12001), self));
    assert.ok(isOwnAddress(udp("::ffff:127.0.0.1", 12001), self));
    assert.ok(!isOwnAddress(udp("127.0.0.1", 12000), self));
    assert.ok(!isOwnAddress(udp("127.0.0.2", 12001), self));
    const v6 = udp("::1", 12001);
    assert.ok(isOwnAddress(udp("0:0::1", 12001), v6));
    assert.ok(!isOwnAddress(udp("127.0.0.1", 12001), v6));
  });

  await t.step("bound to every interface: any loopback address", () => {
    for (const self of [udp("0.0.0.0", 12001), udp("::", 12001)]) {
      for (const host of ["127.0.0.1", "127.1.2.3", "::1", "0.0.0.0"]) {
        assert.ok(isOwnAddress(udp(host, 12001), self), host);
      }
      assert.ok(!isOwnAddress(udp("127.0.0.1", 54321), self));
      // Another computer's server on the same port is somebody else.
      assert.ok(!isOwnAddress(udp("192.168.1.20", 12001), self));
    }
  });

  await t.step("a TCP address is never a UDP socket's", () => {
    const from: Deno.Addr = { transport: "tcp", hostname: "::1", port: 5 };
    assert.ok(!isOwnAddress(from, udp("::1", 5)));
  });
});

Deno.test("whyNotAnswer(): a server answers requests only", () => {
  const self = udp("0.0.0.0", 12001);
  const client = udp("127.0.0.1", 54321);
  for (const isAnswer of [isLabAnswer, isOk]) {
    assert.equal(
      whyNotAnswer(encode("SEND_TIME"), client, self, isAnswer),
      null,
    );
    assert.equal(whyNotAnswer(encode(""), client, self, isAnswer), null);
    assert.equal(
      whyNotAnswer(new Uint8Array([0xff]), client, self, isAnswer),
      null,
    );
    assert.equal(
      whyNotAnswer(encode(" Ok\n"), udp("127.0.0.1", 12000), self, isAnswer),
      "it is an answer, not a request",
    );
    // From itself, even a request: answering it would talk to itself.
    for (const text of ["SEND_TIME", "HELLO", "ERROR unknown request"]) {
      assert.equal(
        whyNotAnswer(encode(text), udp("127.0.0.1", 12001), self, isAnswer),
        "it came from this server's own address",
      );
    }
  }
  // The hello server answers any other text (CONTRACT 3.1), lab answers too.
  for (const text of ["ok", "OK", "ERROR x", "2026-01-31", "09:26:53"]) {
    assert.equal(whyNotAnswer(encode(text), client, self, isOk), null, text);
  }
});

Deno.test("lookupServer()", async (t) => {
  await t.step(
    "keeps a numeric address, resolves a name to a number",
    async () => {
      assert.deepEqual(await lookupServer("127.0.0.1", 7), udp("127.0.0.1", 7));
      assert.deepEqual(await lookupServer("::1", 7), udp("::1", 7));
      const local = await lookupServer("localhost", 7);
      assert.match(local.hostname, /^(127\.0\.0\.1|::1)$/);
    },
  );

  await t.step("an unknown host is one plain FatalError", async () => {
    await assert.rejects(
      lookupServer("nohost.invalid", 7),
      new FatalError(
        "Cannot send to nohost.invalid:7: host not found (check --host)",
      ),
    );
  });
});

Deno.test("openClientSocket() binds every interface of the server's family", () => {
  const cases = [["127.0.0.1", "0.0.0.0"], ...HAS_IPV6 ? [["::1", "::"]] : []];
  for (const [server, bound] of cases) {
    const socket = openClientSocket(udp(server, 9));
    try {
      const addr = socket.addr as Deno.NetAddr;
      assert.equal(addr.hostname, bound);
      assert.ok(addr.port > 0);
    } finally {
      socket.close();
    }
  }
});

Deno.test("Inbox", async (t) => {
  await using server = new TestSocket();
  await using stranger = new TestSocket();

  /** A client socket on 127.0.0.1 and its inbox for `server`'s datagrams. */
  async function withInbox(
    check: (
      inbox: Inbox,
      client: Deno.NetAddr,
      others: string[],
    ) => Promise<void>,
  ) {
    const socket = Deno.listenDatagram({
      hostname: "127.0.0.1",
      port: 0,
      transport: "udp",
    });
    const others: string[] = [];
    const inbox = new Inbox(
      socket,
      server.addr,
      (from) => others.push(String((from as Deno.NetAddr).port)),
    );
    try {
      await check(inbox, socket.addr as Deno.NetAddr, others);
    } finally {
      socket.close();
      await inbox.done;
    }
  }
  const text = (data: Uint8Array | null) =>
    data && new TextDecoder().decode(data);

  await t.step(
    "gives the server's datagrams in order, drops the others",
    async () => {
      await withInbox(async (inbox, client, others) => {
        await stranger.send("x", client);
        await server.send("one", client);
        await server.send("two", client);
        assert.equal(text(await inbox.next(3000)), "one");
        assert.equal(text(await inbox.next(3000)), "two");
        assert.deepEqual(others, [String(stranger.addr.port)]);
      });
    },
  );

  await t.step("null when nothing comes in time, or on abort", async () => {
    await withInbox(async (inbox) => {
      assert.equal(await inbox.next(20), null);
      const stop = new AbortController();
      const waiting = inbox.next(60_000, stop.signal);
      stop.abort();
      assert.equal(await waiting, null);
      assert.equal(await inbox.next(60_000, stop.signal), null);
    });
  });

  /** A socket whose receives give `results` in turn (an Error is thrown), then wait until closed. */
  function scriptedSocket(results: (Error | [string, Deno.Addr])[]) {
    let close = () => {};
    const closed = new Promise<never>((_, reject) =>
      close = () => reject(new Deno.errors.BadResource("closed"))
    );
    closed.catch(() => {});
    const socket = {
      receive() {
        const next = results.shift();
        if (next === undefined) return closed;
        if (next instanceof Error) return Promise.reject(next);
        return Promise.resolve([encode(next[0]), next[1]]);
      },
      close: () => close(),
    };
    return socket as unknown as Deno.DatagramConn;
  }
  const osError = (code: string) =>
    Object.assign(new Error(`${code} (os error 104)`), { code });

  await t.step("a system error on a receive does not stop it", async () => {
    const socket = scriptedSocket([
      osError("ECONNRESET"),
      ["Ok", server.addr],
    ]);
    const inbox = new Inbox(socket, server.addr);
    try {
      assert.equal(text(await inbox.next(2000)), "Ok");
    } finally {
      socket.close();
      await inbox.done;
    }
  });

  await t.step(
    "any other error stops it, and next() throws it (after what came first)",
    async () => {
      const bug = new TypeError("a bug while reading");
      const socket = scriptedSocket([["Ok", server.addr], bug]);
      const inbox = new Inbox(socket, server.addr);
      try {
        assert.equal(text(await inbox.next(2000)), "Ok");
        await assert.rejects(inbox.next(2000), (e) => e === bug);
        await assert.rejects(inbox.next(2000), (e) => e === bug);
      } finally {
        socket.close();
        await inbox.done;
      }
    },
  );

  await t.step("onOther failing reaches the next() that waits", async () => {
    const full = new Error("stdout closed");
    const socket = scriptedSocket([["x", stranger.addr]]);
    const inbox = new Inbox(socket, server.addr, () => {
      throw full;
    });
    try {
      await assert.rejects(inbox.next(2000), (e) => e === full);
    } finally {
      socket.close();
      await inbox.done;
    }
  });

  await t.step("null once the socket is closed", async () => {
    const socket = Deno.listenDatagram({
      hostname: "127.0.0.1",
      port: 0,
      transport: "udp",
    });
    const inbox = new Inbox(socket, server.addr);
    const waiting = inbox.next(60_000);
    socket.close();
    assert.equal(await waiting, null);
    await inbox.done;
    assert.equal(await inbox.next(60_000), null);
  });
});
