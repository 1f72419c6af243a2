/**
 * The behaviour suite's target for MemoryServer (testing.ts), for every
 * runtime (tests/suites/suite_memory_test.ts) and for workerd
 * (tests/workerd/worker.ts). "Starting memcached" makes a MemoryServer
 * under an address of its own (127.0.0.1 and a made-up port: the suite
 * matches error messages on it); clients of such an address reach it
 * through a transport that routes by address, so a restart (a new, empty
 * MemoryServer under the same address, as a restarted memcached is empty)
 * and a stop (connections refused) look as they do over TCP. Fake servers
 * and free ports stay real sockets, through the runtime's own transport.
 */
import { Client, type ClientOptions, type Transport } from "../../mod.ts";
import { addressName } from "../../src/connection/transport.ts";
import type { ClientLike, SuiteServer, SuiteTarget } from "./_suite.ts";
import { MemoryServer, type MemoryServerOptions } from "../../testing.ts";

const servers = new Map<string, MemoryServer>();
/** Every address handed out, stopped ones included: clients of these use the routing transport. */
const names = new Set<string>();
let started = 0;

/** Connects to the MemoryServer that currently answers to the address. */
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

/** The suite's target: MemoryServers for memcached; `other` makes the clients of fake servers and free ports. */
export function memoryTarget(
  name: string,
  other: Pick<SuiteTarget, "startFakeServer" | "freePort"> & {
    makeClient?: (spec: string, options?: ClientOptions) => ClientLike;
    skip?: Record<string, string>;
  },
): SuiteTarget {
  const makeOther = other.makeClient ?? ((spec: string, options?: ClientOptions) => new Client(spec, options));
  return {
    name,
    makeClient: (spec: string, options?: ClientOptions) =>
      names.has(spec) ? new Client(spec, { transport: routing, ...options }) : makeOther(spec, options),
    startMemcached: startMemoryServer,
    startFakeServer: other.startFakeServer,
    freePort: other.freePort,
    skip: {
      "unix socket connections": `${needsProcess} listening on a unix socket`,
      "TLS against memcached -Z with a self-signed certificate": `${needsProcess} speaking TLS`,
      ...other.skip,
    },
  };
}
