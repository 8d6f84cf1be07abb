/**
 * Q2, "run the client and the server on two different computers", with two
 * computers made of Linux network namespaces: host A (10.200.0.1) and host B
 * (10.200.0.2), joined by a virtual Ethernet cable (a veth pair) and nothing
 * else. The servers run on A with `--host 0.0.0.0`, the clients on B with
 * `--host 10.200.0.1`, exactly as on two real machines (udp/README.md).
 *
 * A third test puts a router between a server and a laptop, and unplugs the
 * laptop: what a server sees when a student's laptop leaves the network.
 *
 * Needs root and `ip` (iproute2); elsewhere the tests are ignored and the
 * reason is printed. Every run uses new namespace names, and deletes them
 * (with their veth pairs) in `finally`, after its processes are gone.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ROOT, RUN_FLAGS, RunningScript } from "./support.ts";

const A_ADDR = "10.200.0.1";
const B_ADDR = "10.200.0.2";

const SKIP_REASON = await whyNamespacesUnavailable();
if (SKIP_REASON) {
  console.log(`two_hosts_test: two-computer tests ignored: ${SKIP_REASON}`);
}

/** Two network namespaces joined by a veth pair; dispose to delete them. */
interface Hosts extends AsyncDisposable {
  a: string;
  b: string;
}

Deno.test({
  name: "two computers (network namespaces), Q2",
  ignore: SKIP_REASON !== undefined,
  async fn(t) {
    await using hosts = await makeHosts();

    await t.step("UDP hello: server on A, client on B", async () => {
      await using server = await startOn(hosts.a, "udp/hello_server.ts");
      const client = await runOn(hosts.b, "udp/hello_client.ts", [
        "--host",
        A_ADDR,
        "--port",
        String(server.port),
      ]);
      assert.equal(client.code, 0, client.stderr);
      assert.match(client.stdout, /Ok/);
      // The client names the server it heard from: A's address.
      assert.match(client.stdout, addrPattern(A_ADDR, server.port));
      // The server names the sender: B's address, not 127.0.0.1.
      const line = await server.waitFor("UDP joke");
      assert.match(line, addrPattern(B_ADDR));
    });

    await t.step("UDP date/time: server on A, client on B", async () => {
      await using server = await startOn(hosts.a, "udp/time_server.ts");
      const client = await runOn(hosts.b, "udp/time_client.ts", [
        "--host",
        A_ADDR,
        "--port",
        String(server.port),
        "--count",
        "2",
        "--min-delay",
        "0",
        "--max-delay",
        "0",
      ]);
      assert.equal(client.code, 0, client.stderr);
      assert.match(client.stdout, /\d{4}-\d\d-\d\d|\d\d:\d\d:\d\d/);
      assert.doesNotMatch(client.stdout, /ERROR/);
      const line = await server.waitFor(/SEND_(DATE|TIME)/i);
      assert.match(line, addrPattern(B_ADDR));
    });

    await t.step("TCP knock-knock: server on A, client on B", async () => {
      await using server = await startOn(hosts.a, "tcp/knock_server.ts");
      const client = await runOn(hosts.b, "tcp/knock_client.ts", [
        "--host",
        A_ADDR,
        "--port",
        String(server.port),
      ]);
      assert.equal(client.code, 0, client.stderr);
      assert.match(client.stdout, /Who's there\?/);
      const line = await server.waitFor("Knock knock");
      assert.match(line, addrPattern(B_ADDR));
    });

    await t.step(
      "a server bound to 127.0.0.1 cannot be reached from B",
      async () => {
        await using server = await startOn(
          hosts.a,
          "tcp/knock_server.ts",
          "127.0.0.1",
        );
        const client = await runOn(hosts.b, "tcp/knock_client.ts", [
          "--host",
          A_ADDR,
          "--port",
          String(server.port),
        ]);
        assert.equal(client.code, 1);
        assert.match(client.stderr, /connection refused/i);
      },
    );

    await t.step(
      "a TCP client on B for a network B has no route to: one sentence",
      async () => {
        // B's one cable leads to 10.200.0.0/24: connect() fails at once.
        const client = await runOn(hosts.b, "tcp/knock_client.ts", [
          ...["--host", "10.99.0.1", "--port", "12002"],
        ]);
        assert.equal(client.code, 1, client.stderr);
        assert.equal(
          client.stderr,
          "Cannot connect to 10.99.0.1:12002: network is unreachable (check the address and the network)\n",
        );
      },
    );
  },
});

Deno.test({
  name:
    "a chat client whose laptop leaves the network is dropped; the room goes on",
  ignore: SKIP_REASON !== undefined,
  async fn() {
    await using net = await makeRoutedHosts();
    await using server = await startOn(net.server, "chat/server.ts");
    const client = (name: string, ns: string, host: string) =>
      new RunningScript(
        commandOn(ns, "chat/client.ts", [
          ...["--host", host, "--port", String(server.port), "--name", name],
        ], "piped").spawn(),
      );
    await using far = client("far", net.laptop, SERVER_ADDR);
    await far.waitFor(/^Welcome/);
    await using near = client("near", net.server, "127.0.0.1");
    await near.waitFor(/^Welcome/);

    // The laptop goes (lid closed): the router can no longer find it and
    // answers the server's sends to it with "host unreachable". Then one
    // message for the room leaves the server unacknowledged towards it.
    await net.unplugLaptop();
    await near.write("is anybody there?\n");
    // With tcp_retries2=3 the server gives up after a few seconds (15
    // minutes by default), and the failed read says EHOSTUNREACH.
    await server.waitFor("far left", 60_000);
    await near.waitFor("far has left the chat.");
    await near.write("/who\n");
    await near.waitFor("In the room: near");
    const result = await server.stop("SIGTERM");
    assert.equal(result.code, 0, result.stderr); // it was still running
    // A lost peer is no bug: the server said nothing on stderr about it.
    assert.equal(result.stderr, "");
  },
});

/** Why the namespaces cannot be made here, or `undefined` when they can. */
async function whyNamespacesUnavailable(): Promise<string | undefined> {
  if (Deno.build.os !== "linux") return "network namespaces are Linux only";
  if (Deno.uid() !== 0) return "needs root (ip netns add)";
  const probe = `lab-probe-${crypto.randomUUID().slice(0, 8)}`;
  try {
    await ip("netns", "add", probe);
  } catch (error) {
    return error instanceof Deno.errors.NotFound
      ? "the ip command (iproute2) is not installed"
      : `cannot create a network namespace: ${(error as Error).message}`;
  }
  await ip("netns", "del", probe);
  return undefined;
}

/** Host A and host B, each with an address on the veth pair between them. */
async function makeHosts(): Promise<Hosts> {
  const id = crypto.randomUUID().slice(0, 6);
  const a = `lab-a-${id}`;
  const b = `lab-b-${id}`;
  const dispose = await makeNamespaces([a, b], async () => {
    await cable(
      { ns: a, dev: `va${id}`, addr: A_ADDR },
      { ns: b, dev: `vb${id}`, addr: B_ADDR },
    );
  });
  return { a, b, [Symbol.asyncDispose]: dispose };
}

const SERVER_ADDR = "10.201.1.1";
const LAPTOP_ADDR = "10.201.2.2";

/** A server host and a laptop on two networks, a router between them. */
interface RoutedHosts extends AsyncDisposable {
  server: string;
  laptop: string;
  /** Take the laptop off its network; the router forgets its address. */
  unplugLaptop(): Promise<void>;
}

/**
 * server (10.201.1.1) -- router (10.201.1.254, 10.201.2.254) -- laptop
 * (10.201.2.2). The server's TCP gives up on an unanswered send after 3
 * resends (`tcp_retries2`, a setting of its namespace), not 15.
 */
async function makeRoutedHosts(): Promise<RoutedHosts> {
  const id = crypto.randomUUID().slice(0, 6);
  const [server, router, laptop] = ["s", "r", "l"].map((h) => `lab-${h}-${id}`);
  const dispose = await makeNamespaces([server, router, laptop], async () => {
    await cable(
      { ns: server, dev: `vs${id}`, addr: SERVER_ADDR },
      { ns: router, dev: `vrs${id}`, addr: "10.201.1.254" },
    );
    await cable(
      { ns: laptop, dev: `vl${id}`, addr: LAPTOP_ADDR },
      { ns: router, dev: `vrl${id}`, addr: "10.201.2.254" },
    );
    await ip("-n", server, "route", "add", "default", "via", "10.201.1.254");
    await ip("-n", laptop, "route", "add", "default", "via", "10.201.2.254");
    await setSysctl(router, "net/ipv4/ip_forward", "1");
    await setSysctl(server, "net/ipv4/tcp_retries2", "3");
  });
  return {
    server,
    laptop,
    async unplugLaptop() {
      await ip("-n", laptop, "link", "set", `vl${id}`, "down");
      await ip("-n", router, "neigh", "flush", "dev", `vrl${id}`);
    },
    [Symbol.asyncDispose]: dispose,
  };
}

/**
 * Add the namespaces `names` and run `build` on them. Returns what deletes
 * them again; if `build` fails they are deleted at once.
 */
async function makeNamespaces(
  names: string[],
  build: () => Promise<void>,
): Promise<() => Promise<void>> {
  const dispose = async () => {
    // Deleting a namespace deletes the veth ends inside it, and so the pairs.
    for (const ns of names) await ip("netns", "del", ns).catch(() => {});
  };
  try {
    for (const ns of names) await ip("netns", "add", ns);
    await build();
  } catch (error) {
    await dispose();
    throw error;
  }
  return dispose;
}

/** One end of a cable: the namespace, its device's name, its address. */
interface End {
  ns: string;
  dev: string;
  addr: string;
}

/** A veth pair from `a` to `b` (a virtual Ethernet cable), both ends up. */
async function cable(a: End, b: End) {
  await ip(
    ...["link", "add", a.dev, "netns", a.ns, "type", "veth"],
    ...["peer", "name", b.dev, "netns", b.ns],
  );
  await configure(a.ns, a.dev, a.addr);
  await configure(b.ns, b.dev, b.addr);
}

/** Write `value` to /proc/sys/`key` inside namespace `ns`. */
async function setSysctl(ns: string, key: string, value: string) {
  await ip("netns", "exec", ns, "sh", "-c", `echo ${value} > /proc/sys/${key}`);
}

async function configure(ns: string, dev: string, addr: string) {
  await ip("-n", ns, "addr", "add", `${addr}/24`, "dev", dev);
  await ip("-n", ns, "link", "set", dev, "up");
  await ip("-n", ns, "link", "set", "lo", "up");
}

/** Run `ip ARGS`; throws with ip's message when it fails. */
async function ip(...args: string[]): Promise<void> {
  const { success, stderr } = await new Deno.Command("ip", {
    args,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!success) {
    throw new Error(
      `ip ${args.join(" ")}: ${new TextDecoder().decode(stderr)}`,
    );
  }
}

/** `ip netns exec NS deno run <exercise flags> SCRIPT ARGS`. */
function commandOn(
  ns: string,
  script: string,
  args: string[],
  stdin: "null" | "piped" = "null",
): Deno.Command {
  return new Deno.Command("ip", {
    args: [
      "netns",
      "exec",
      ns,
      Deno.execPath(),
      "run",
      ...RUN_FLAGS,
      script,
      ...args,
    ],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin,
    stdout: "piped",
    stderr: "piped",
  });
}

/** Start a server in `ns` on `host` (default: every interface), free port. */
async function startOn(ns: string, script: string, host = "0.0.0.0") {
  const running = new RunningScript(
    commandOn(ns, script, ["--host", host, "--port", "0"]).spawn(),
  );
  try {
    const first = await running.waitFor(/./);
    const port = Number(/listening on \S+:(\d+)/.exec(first)?.[1]);
    assert.ok(port > 0, `first line has no 'listening on': ${first}`);
    return Object.assign(running, { port });
  } catch (error) {
    await running.stop("SIGKILL");
    throw error;
  }
}

/** Run a client in `ns` to its end (killed after 20 s: a hang fails). */
function runOn(ns: string, script: string, args: string[]) {
  return new RunningScript(commandOn(ns, script, args).spawn()).finish(20_000);
}

/** `10.200.0.2:<any port>`, or exactly `10.200.0.1:12345`. */
function addrPattern(host: string, port?: number): RegExp {
  const escaped = host.replaceAll(".", "\\.");
  return new RegExp(`${escaped}:${port ?? "\\d+"}(?!\\d)`);
}
