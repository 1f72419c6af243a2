// The Client behaviour suite against MemoryServer (testing.ts) through its
// transport: the same cases as against a spawned memcached, on every
// runtime. "Starting memcached" makes a MemoryServer under an address of its
// own (127.0.0.1 and a made-up port: the suite matches error messages on
// it); the Client reaches it through a transport that routes by that address, so a
// restart (a new MemoryServer under the same name, empty, as a restarted
// memcached) and a stop (connections refused) look as they do over TCP. The
// fake servers and free ports of the suite stay real sockets.
import { Client, type ClientOptions, type Transport } from "../mod.ts";
import { addressName } from "../src/transport.ts";
import { clientSuite, type SuiteServer, type SuiteTarget } from "./_suite.ts";
import { metaSuite } from "./_suite_meta.ts";
import { freePort, startFakeServer } from "./_memcached.ts";
import { MemoryServer, type MemoryServerOptions } from "../testing.ts";

const servers = new Map<string, MemoryServer>();
/** Every address handed out, stopped ones included: clients of these use the routing transport. */
const names = new Set<string>();
let started = 0;

/** Connects to the MemoryServer that currently answers to the address's name. */
const routing: Transport = {
  name: "memory",
  connect(address, options, handlers) {
    const server = servers.get(addressName(address));
    if (!server) {
      return Promise.reject(
        Object.assign(new Error("connect ECONNREFUSED (no MemoryServer)"), { code: "ECONNREFUSED" }),
      );
    }
    return server.transport().connect(address, options, handlers);
  },
};

/** memcached's `-I 2m` as itemSizeMax; the suite passes no other arguments. */
function optionsFrom(args: string[] = []): MemoryServerOptions {
  const at = args.indexOf("-I");
  if (at < 0) return {};
  const size = /^(\d+)([km]?)$/.exec(args[at + 1] ?? "");
  if (!size) throw new Error(`unsupported -I ${args[at + 1]}`);
  return { itemSizeMax: Number(size[1]) * (size[2] === "m" ? 1024 * 1024 : size[2] === "k" ? 1024 : 1) };
}

function startMemoryServer(options: { args?: string[]; unix?: boolean; tls?: boolean } = {}): Promise<SuiteServer> {
  if (options.unix || options.tls) throw new Error("MemoryServer has no unix socket or TLS");
  const name = `127.0.0.1:${20000 + ++started}`;
  names.add(name);
  const serverOptions = optionsFrom(options.args);
  servers.set(name, new MemoryServer(serverOptions));
  const stop = async () => {
    const server = servers.get(name);
    servers.delete(name);
    await server?.close();
  };
  return Promise.resolve({
    spec: name,
    stop,
    async restart() {
      await stop();
      servers.set(name, new MemoryServer(serverOptions));
    },
    [Symbol.asyncDispose]: stop,
  });
}

const needsProcess = "needs a memcached process";
const target: SuiteTarget = {
  name: "Client/memory",
  makeClient: (spec: string, options?: ClientOptions) =>
    names.has(spec) ? new Client(spec, { transport: routing, ...options }) : new Client(spec, options),
  startMemcached: startMemoryServer,
  startFakeServer,
  freePort,
  skip: {
    "unix socket connections": `${needsProcess} listening on a unix socket`,
    "TLS against memcached -Z with a self-signed certificate": `${needsProcess} speaking TLS`,
  },
};

clientSuite(target);
metaSuite(target);
