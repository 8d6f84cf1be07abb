/**
 * The accept loop that the three TCP servers share (lib/tcp_server.ts): a
 * bug in one session ends that session only when the server asks for it,
 * and a server out of file descriptors says so, waits, and takes clients
 * again once some have left.
 */

import assert from "node:assert/strict";
import { writeLine } from "../lib/lines.ts";
import { formatAddr } from "../lib/net.ts";
import {
  closeQuietly,
  reportBug,
  serveConnections,
} from "../lib/tcp_server.ts";
import { startChatServer } from "../chat/server.ts";
import { startCalcServer } from "../tcp/calc_server.ts";
import {
  copyKit,
  ROOT,
  RUN_FLAGS,
  RunningScript,
  startServer,
  within,
} from "./support.ts";
import { TestClient } from "./tcp_support.ts";

// A session's task may fail as an async function does (its promise
// rejects) or before it has a promise at all (a plain function that throws,
// like the chat server's serve()): either way only that session ends.
Deno.test("a session that throws a bug: onBug gets it, and the next client is served", async (t) => {
  const handlers = {
    "rejecting": () =>
      Promise.reject(new TypeError("a bug in the first session")),
    "throwing before it returns its promise": () => {
      throw new TypeError("a bug in the first session");
    },
  };
  for (const [kind, failing] of Object.entries(handlers)) {
    await t.step(kind, async () => {
      const bugs: { error: unknown; client: string }[] = [];
      let sessions = 0;
      const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      await using server = serveConnections(listener, (conn) => {
        if (++sessions === 1) return failing();
        return writeLine(conn, "served");
      }, {
        onBug: (error, conn) =>
          bugs.push({ error, client: formatAddr(conn.remoteAddr) }),
      });

      {
        await using first = await TestClient.connect(
          localhost(server.addr.port),
        );
        // The server closes the connection of the failed session.
        await first.expectClosed();
        assert.equal(bugs.length, 1);
        assert.ok(bugs[0].error instanceof TypeError);
        assert.equal(bugs[0].client, formatAddr(first.conn.localAddr));
      }
      await expectServed(server.addr.port);
    });
  }
});

Deno.test("the chat server script: a bug ends one session, said on stderr; the room goes on", async () => {
  // A copy of the kit whose sessions have a bug: a line CRASH throws.
  const copy = await copyKit();
  try {
    const path = `${copy}/chat/session.ts`;
    const source = await Deno.readTextFile(path);
    const from = `      case "UNKNOWN":\n`;
    assert.ok(source.includes(from), `chat/session.ts: no ${from}`);
    const bug = 'if (line === "CRASH") throw new TypeError("a bug");\n';
    await Deno.writeTextFile(path, source.replace(from, `${from}${bug}`));
    await using server = await startServer(`${copy}/chat/server.ts`);
    const target = localhost(server.port);
    await using ann = await TestClient.connect(target);
    assert.equal(await ann.ask("LOGIN ann"), "WELCOME ann");
    await using bob = await TestClient.connect(target);
    await bob.send("CRASH\n");
    await bob.expectClosed();
    assert.equal(await ann.ask("WHO"), "USERS ann");
    const { code, stderr } = await server.stop("SIGTERM");
    assert.equal(code, 0, stderr);
    assert.match(
      stderr,
      /^Bug: the session of 127\.0\.0\.1:\d+ failed and was closed; serving the others\. Please report: TypeError: a bug\n +at /,
    );
  } finally {
    await Deno.remove(copy, { recursive: true });
  }
});

// On macOS, setting TCP_NODELAY on a connection that its client has
// already reset fails with EINVAL (XNU refuses options on a socket shut in
// both directions). Linux never does that, so the servers' side of the
// connection is made to refuse here: the session must go on to find out
// the rest for itself. The servers run without onBug, so a bug would fail
// the test as an uncaught error.
Deno.test("a connection that refuses TCP_NODELAY (macOS, after a reset) is served like any other", async (t) => {
  const servers = {
    "chat": {
      start: () => startChatServer({ hostname: "127.0.0.1", port: 0 }),
      ask: "LOGIN ada",
      answer: "WELCOME ada",
    },
    "calculator": {
      start: () => startCalcServer({ hostname: "127.0.0.1", port: 0 }),
      ask: "ada",
      answer: "Hello ada",
    },
  };
  for (const [name, { start, ask, answer }] of Object.entries(servers)) {
    await t.step(name, async () => {
      await using server = start();
      // Every TcpConn shares one prototype: refuse on the server's side only.
      const tcpConn = await tcpConnPrototype();
      const setNoDelay = tcpConn.setNoDelay;
      let refused = 0;
      tcpConn.setNoDelay = function (this: Deno.TcpConn, on?: boolean) {
        if (this.localAddr.port !== server.addr.port) {
          return setNoDelay.call(this, on);
        }
        refused++;
        throw Object.assign(new Error("Invalid argument (os error 22)"), {
          code: "EINVAL",
        });
      };
      try {
        await using refusing = await TestClient.connect(
          localhost(server.addr.port),
        );
        assert.equal(await refusing.ask(ask), answer);
      } finally {
        tcpConn.setNoDelay = setNoDelay;
      }
      assert.equal(refused, 1);
    });
  }
});

/** The prototype of every Deno.TcpConn, from a connection of its own. */
async function tcpConnPrototype(): Promise<Deno.TcpConn> {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  using conn = await Deno.connect(localhost(listener.addr.port));
  return Object.getPrototypeOf(conn);
}

Deno.test("without onBug a session's bug is left uncaught, as a crash, not swallowed", async () => {
  // In-process tests start servers without onBug and count on this: a bug
  // fails the test instead of ending one session quietly.
  const bug = new TypeError("a bug in the session");
  const uncaught = Promise.withResolvers<unknown>();
  const catchIt = (event: PromiseRejectionEvent) => {
    event.preventDefault(); // this test's process goes on
    uncaught.resolve(event.reason);
  };
  globalThis.addEventListener("unhandledrejection", catchIt);
  try {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    await using server = serveConnections(listener, () => Promise.reject(bug));
    const conn = await Deno.connect({ port: server.addr.port });
    try {
      const reason = within(uncaught.promise, 5000, "the bug was swallowed");
      assert.equal(await reason, bug);
    } finally {
      conn.close();
    }
  } finally {
    globalThis.removeEventListener("unhandledrejection", catchIt);
  }
});

Deno.test("out of file descriptors: the chat server says so, waits, and serves again", async () => {
  // 64 descriptors: Deno needs about 20, so some 40 clients fit.
  await using script = new RunningScript(
    new Deno.Command("bash", {
      args: [
        "-c",
        'ulimit -n 64 && exec "$0" "$@"',
        Deno.execPath(),
        "run",
        ...RUN_FLAGS,
        "chat/server.ts",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
      ],
      cwd: ROOT,
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn(),
  );
  const crowd: Deno.TcpConn[] = [];
  try {
    const first = await script.waitFor(/listening on/);
    const port = Number(/:(\d+)$/.exec(first)![1]);
    // The kernel completes connections the server cannot take yet: they wait
    // in the listen queue.
    for (let i = 0; i < 80; i++) {
      crowd.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    }
    const full = await script.waitFor(/^Cannot accept new connections/);
    assert.match(
      full,
      /^Cannot accept new connections: Too many open files \(os error 24\), with \d+ connected\. New clients wait until some leave; to serve more, raise the limit in the shell before starting the server: ulimit -n 8192$/,
    );
    for (const conn of crowd.splice(0)) conn.close();

    // Those that left are taken and let go; then a newcomer is served.
    await script.waitFor("Accepting new connections again");
    {
      await using zoe = await TestClient.connect(localhost(port));
      assert.equal(await zoe.ask("LOGIN zoe"), "WELCOME zoe");
    }
    const { code, stdout, stderr } = await script.stop("SIGTERM");
    assert.equal(code, 0, stderr);
    assert.equal(stderr, "");
    assert.match(stdout, /logged in as zoe/);
    assert.match(stdout, /Chat server stopped$/);
    // Each time it ran out, it said so once, and once that it took clients
    // again (twice here: the crowd's second half filled it up again).
    const news = stdout.match(/^(Cannot accept|Accepting).*/gm)!;
    assert.ok(news.length >= 2, stdout);
    news.forEach((line, i) =>
      assert.match(line, i % 2 ? /^Accepting/ : /^Cannot accept/, stdout)
    );
  } finally {
    for (const conn of crowd) conn.close();
  }
});

/** Out of file descriptors, as accept(2) says it. */
const EMFILE = () =>
  Object.assign(new Error("Too many open files (os error 24)"), {
    code: "EMFILE",
  });

/**
 * The accept loop over a listener whose n-th `accept()` (from 1) is
 * `accept(real, n)`: a test makes some of them fail. Each session writes
 * `served`; what the loop logs is in `lines`.
 */
function serveThrough(
  accept: (real: Deno.TcpListener, n: number) => Promise<Deno.TcpConn>,
) {
  const real = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let calls = 0;
  const listener = {
    addr: real.addr,
    accept: () => accept(real, ++calls),
    close: () => real.close(),
  } as unknown as Deno.TcpListener;
  const lines: string[] = [];
  const server = serveConnections(
    listener,
    (conn) => writeLine(conn, "served"),
    { log: (line) => lines.push(line) },
  );
  return Object.assign(server, { lines });
}

/** A client of `port` gets `served`, then the close. */
async function expectServed(port: number): Promise<void> {
  await using client = await TestClient.connect(localhost(port));
  assert.equal(await client.answer(), "served");
  await client.expectClosed();
}

/** Port `port` of 127.0.0.1. */
function localhost(port: number) {
  return { hostname: "127.0.0.1", port };
}

Deno.test("accept failing again and again: said once, and once more when it works", async () => {
  // Fails three times, as out of file descriptors, then takes clients: the
  // loop retries every 100 ms in between.
  await using server = serveThrough((real, n) =>
    n <= 3 ? Promise.reject(EMFILE()) : real.accept()
  );
  await expectServed(server.addr.port);
  assert.deepEqual(server.lines, [
    "Cannot accept new connections: Too many open files (os error 24), with 0 connected. New clients wait until some leave; to serve more, raise the limit in the shell before starting the server: ulimit -n 8192",
    "Accepting new connections again",
  ]);
});

Deno.test("a client that left before it was accepted is skipped, and nothing is logged", async () => {
  await using server = serveThrough((real, n) =>
    n === 1
      ? Promise.reject(new Deno.errors.ConnectionAborted("aborted"))
      : real.accept()
  );
  await expectServed(server.addr.port);
  assert.deepEqual(server.lines, []);
});

Deno.test("out of file descriptors: the log counts the clients still connected, not those gone", async () => {
  // Two clients come and go; then accept fails until the test says so.
  let fail!: () => void;
  const failing = new Promise<never>((_, reject) =>
    fail = () => reject(EMFILE())
  );
  await using server = serveThrough((real, n) =>
    n === 3 ? failing : real.accept()
  );
  for (let i = 0; i < 3; i++) {
    if (i === 2) fail(); // both sessions over: their connections closed
    await expectServed(server.addr.port);
  }
  assert.match(
    server.lines[0],
    /^Cannot accept new connections: .*, with 0 connected\./,
  );
  assert.equal(server.lines[1], "Accepting new connections again");
});

Deno.test("out of memory or of the system's descriptors, or an error we do not know: said once, retried every 100 ms", async (t) => {
  const failures = {
    "ENFILE": "Too many open files in system (os error 23)",
    "ENOBUFS": "No buffer space available (os error 105)",
    "ENOMEM": "Cannot allocate memory (os error 12)",
    "no errno": "something unexpected",
  };
  for (const [code, message] of Object.entries(failures)) {
    await t.step(code, async () => {
      const failure = () =>
        code === "no errno"
          ? new Error(message)
          : Object.assign(new Error(message), { code });
      const calls: number[] = []; // when each accept() was called
      await using server = serveThrough((real, n) => {
        calls.push(performance.now());
        return n <= 2 ? Promise.reject(failure()) : real.accept();
      });
      await expectServed(server.addr.port);
      assert.deepEqual(server.lines, [
        `Cannot accept new connections: ${message}, with 0 connected. New clients wait; trying again every 100 ms.`,
        "Accepting new connections again",
      ]);
      // A lower bound only (1 ms for the clocks' rounding): the loop waits
      // between tries, where retrying at once would spin.
      for (let i = 1; i < 3; i++) {
        const waited = calls[i] - calls[i - 1];
        assert.ok(waited >= 99, `tried again after ${waited} ms`);
      }
    });
  }
});

Deno.test("close() while accept is failing: it waits for the retry to end", async () => {
  // Under the sanitizers: a retry timer left running would fail this test.
  const failed = Promise.withResolvers<void>();
  const server = serveThrough((real, n) => {
    if (n > 1) return real.accept(); // after close(): BadResource
    failed.resolve();
    return Promise.reject(EMFILE());
  });
  await failed.promise;
  await server.close();
  assert.match(server.lines.join("\n"), /^Cannot accept new connections: /);
});

Deno.test("reportBug(): the client's address, then the bug itself, with its stack", () => {
  const bug = new TypeError("a bug in the session");
  const said: unknown[][] = [];
  const error = console.error;
  console.error = (...args: unknown[]) => said.push(args);
  try {
    const remoteAddr = { transport: "tcp", hostname: "::1", port: 50000 };
    reportBug(bug, { remoteAddr } as Deno.TcpConn);
  } finally {
    console.error = error;
  }
  assert.deepEqual(said, [[
    "Bug: the session of [::1]:50000 failed and was closed; serving the others. Please report:",
    bug,
  ]]);
});

Deno.test("closeQuietly(): a resource closed already is no error, a bug is", () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  closeQuietly(listener);
  closeQuietly(listener);
  const buggy = {
    close() {
      throw new TypeError("a bug");
    },
  };
  assert.throws(() => closeQuietly(buggy), TypeError);
});
