/**
 * Test servers: real memcached processes on free loopback ports (TCP, unix
 * socket or TLS), and tiny fake servers for behaviour memcached never shows
 * (silence, garbage). Each helper stops exactly what it started.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import tls from "node:tls";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const BIN = process.env.MEMCACHED_BIN ?? "memcached";

/**
 * The memcached versions the tests run against: the system's (Debian 12's
 * 1.6.18, or MEMCACHED_BIN) and 1.6.38 with the proxy, built by
 * scripts/build_memcached.sh into node_modules/.cache/memkit/.
 */
export type MemcachedVersion = "1.6.18" | "1.6.38";

const BUILT_1638 = join("node_modules", ".cache", "memkit", "memcached-1.6.38", "memcached");

/**
 * Where memcached 1.6.38 is: MEMCACHED_1638_BIN, else the build cache in the
 * first node_modules up from the working directory or from this file (the
 * Node and Bun stages run compiled copies under .tmp/). Undefined if absent.
 */
export function memcached1638Path(): string | undefined {
  const given = process.env.MEMCACHED_1638_BIN;
  if (given) return existsSync(given) ? given : undefined;
  const starts = [process.cwd()];
  try {
    starts.push(dirname(fileURLToPath(import.meta.url)));
  } catch { /* not a file: URL (a bundle) */ }
  for (const start of starts) {
    for (let dir = start, i = 0; i < 8; i++) {
      const candidate = join(dir, BUILT_1638);
      if (existsSync(candidate)) return candidate;
      const up = dirname(dir);
      if (up === dir) break;
      dir = up;
    }
  }
  return undefined;
}

/**
 * The skip reason for a test that needs memcached 1.6.38 (`it(name, body, {
 * skip })`): false when it is there, and also when it is missing but
 * MEMKIT_SKIP_1638 is not set (then starting it fails with a clear message:
 * CI must prove the matrix, not skip it).
 */
export function skipWithout1638(): string | false {
  if (memcached1638Path() || process.env.MEMKIT_SKIP_1638 !== "1") return false;
  return "MEMKIT_SKIP_1638=1 and memcached 1.6.38 is not built (bash scripts/build_memcached.sh)";
}

function binaryFor(version: MemcachedVersion | undefined): string {
  if (version !== "1.6.38") return BIN;
  const path = memcached1638Path();
  if (!path) {
    throw new Error(
      "memcached 1.6.38 is missing: expected at " + (process.env.MEMCACHED_1638_BIN || BUILT_1638) +
        " (run `bash scripts/build_memcached.sh`, " +
        "which needs apt-get, dpkg-dev and a C toolchain), or point MEMCACHED_1638_BIN at one; " +
        "MEMKIT_SKIP_1638=1 skips the tests that need it",
    );
  }
  return path;
}

/** A running memcached this test owns. */
export interface MemcachedServer extends AsyncDisposable {
  /** The spec to pass to a client: "127.0.0.1:port" or "unix:/path". */
  readonly spec: string;
  readonly host: string;
  readonly port: number;
  /** The unix socket path, for `unix` servers. */
  readonly path?: string;
  /** PEM of the self-signed certificate, for `tls` servers. */
  readonly cert?: string;
  /** Kills the process and waits for it to exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port / path with the same arguments. */
  restart(): Promise<void>;
  /** Stops the process from running (SIGSTOP): it reads nothing until `resume`. */
  pause(): void;
  /** Lets a paused process run again (SIGCONT). */
  resume(): void;
}

export interface MemcachedOptions {
  /** Extra memcached arguments, e.g. ["-I", "2m"]. */
  args?: string[];
  /** Listen on a unix socket instead of TCP. */
  unix?: boolean;
  /** Enable TLS with a self-signed certificate for 127.0.0.1 / localhost. */
  tls?: boolean;
  /** The memcached binary to run. @default $MEMCACHED_BIN, else `memcached` on the PATH */
  bin?: string;
  /** Which memcached: the system's (default) or the 1.6.38 build. */
  version?: MemcachedVersion;
}

/** A free loopback TCP port (the OS picks, we release it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

let certDir: string | undefined;
/**
 * A test CA and a server certificate it signed for 127.0.0.1 / localhost
 * (made once per process with openssl). `cert` is the CA to trust.
 */
export function testCertificate(): { cert: string; certPath: string; keyPath: string } {
  if (!certDir) {
    const dir = mkdtempSync(join(tmpdir(), "memkit-tls-"));
    const at = (name: string) => join(dir, name);
    const openssl = (...args: string[]) => execFileSync("openssl", args, { stdio: "ignore" });
    openssl(
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "2",
      "-keyout",
      at("ca.key"),
      "-out",
      at("ca.pem"),
      "-subj",
      "/CN=memkit test CA",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    );
    openssl(
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      at("server.key"),
      "-out",
      at("server.csr"),
      "-subj",
      "/CN=localhost",
    );
    writeFileSync(
      at("server.ext"),
      "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n" +
        "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
    );
    openssl(
      "x509",
      "-req",
      "-in",
      at("server.csr"),
      "-CA",
      at("ca.pem"),
      "-CAkey",
      at("ca.key"),
      "-CAcreateserial",
      "-days",
      "2",
      "-out",
      at("server.pem"),
      "-extfile",
      at("server.ext"),
    );
    certDir = dir;
    process.on?.("exit", () => rmSync(dir, { recursive: true, force: true }));
  }
  return {
    cert: readFileSync(join(certDir, "ca.pem"), "utf8"),
    certPath: join(certDir, "server.pem"),
    keyPath: join(certDir, "server.key"),
  };
}

/** True when something accepts connections at `target`. */
export function probe(target: { port: number; host: string } | { path: string }): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = "path" in target ? net.connect({ path: target.path }) : net.connect(target);
    const done = (ok: boolean) => {
      socket.removeAllListeners();
      socket.on("error", () => {});
      socket.destroy();
      resolve(ok);
    };
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Starts a memcached this test owns; `await using server = await startMemcached()`. */
export async function startMemcached(options: MemcachedOptions = {}): Promise<MemcachedServer> {
  const bin = options.bin ?? binaryFor(options.version);
  const host = "127.0.0.1";
  const dir = options.unix ? mkdtempSync(join(tmpdir(), "memkit-sock-")) : undefined;
  const path = dir ? join(dir, "memcached.sock") : undefined;
  const cert = options.tls ? testCertificate() : undefined;
  let port = path ? 0 : await freePort();
  const base = ["-U", "0", "-t", "1", "-m", "64", ...(options.args ?? [])];
  if (process.getuid?.() === 0) base.push("-u", "root");
  if (cert) base.push("-Z", "-o", `ssl_chain_cert=${cert.certPath},ssl_key=${cert.keyPath}`);
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  async function launch(): Promise<void> {
    for (let attempt = 0;; attempt++) {
      const args = path ? [...base, "-s", path, "-a", "0700"] : [...base, "-l", host, "-p", String(port)];
      const proc = spawn(bin, args, { stdio: ["ignore", "ignore", "pipe"] });
      let stderr = "";
      proc.stderr!.on("data", (d) => (stderr += d));
      let gone = false;
      exited = new Promise<void>((resolve) => proc.once("close", () => ((gone = true), resolve())));
      proc.once("error", () => {});
      const target = path ? { path } : { host, port };
      for (let i = 0; i < 200 && !gone; i++) {
        if (await probe(target)) {
          child = proc;
          return;
        }
        await sleep(10);
      }
      if (!gone) proc.kill("SIGKILL");
      await exited;
      if (stderr.includes("ENOENT") || (proc as { spawnfile?: string }).spawnfile === undefined) {
        throw new Error(`could not start ${bin}: is memcached installed? ${stderr}`);
      }
      if (attempt >= 3) throw new Error(`memcached did not start: ${stderr.trim() || "no output"}`);
      if (!path) port = await freePort(); // lost a race for the port: pick another
    }
  }

  async function stop(): Promise<void> {
    const proc = child;
    child = undefined;
    if (!proc) return;
    proc.kill("SIGKILL");
    await exited;
  }

  await launch();
  return {
    spec: path ? `unix:${path}` : `${host}:${port}`,
    host,
    get port() {
      return port;
    },
    path,
    cert: cert?.cert,
    stop,
    async restart() {
      await stop();
      await launch();
    },
    // process.kill, not child.kill: Deno's ChildProcess#kill refuses SIGCONT.
    pause: () => void (child?.pid && process.kill(child.pid, "SIGSTOP")),
    resume: () => void (child?.pid && process.kill(child.pid, "SIGCONT")),
    async [Symbol.asyncDispose]() {
      await stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A memcached 1.6.38 running as a proxy (routelib) in front of backends this test owns. */
export interface ProxyServer extends MemcachedServer {
  /** The backends, in the order the config lists them. */
  readonly backends: MemcachedServer[];
  /** The routelib config the proxy loaded. */
  readonly config: string;
}

export interface ProxyOptions extends Omit<MemcachedOptions, "version"> {
  /** How many backends (memcached 1.6.38) to start; 3 by default. */
  backends?: number;
  /** Arguments for every backend; `args` are the proxy's own (e.g. ["-I", "2m"] goes to both). */
  backendArgs?: string[];
  /**
   * The routelib config for the backends' "host:port" specs. By default one
   * pool of all of them (keys hashed across it) and a direct route.
   */
  config?: (backends: string[]) => string;
}

/** routelib: one pool `main` of `backends`, every key routed to it (hashed by key). */
export function shardedConfig(backends: string[]): string {
  return [
    "pools{",
    "  main = {",
    `    backends = { ${backends.map((b) => JSON.stringify(b)).join(", ")} },`,
    "  },",
    "}",
    "routes{",
    '  default = route_direct{ child = "main" },',
    "}",
    "",
  ].join("\n");
}

/**
 * Starts `backends` memcached 1.6.38 and a memcached 1.6.38 proxy in front of
 * them with memcached's built-in routelib (`-o proxy_config=routelib,
 * proxy_arg=<config file>`). `stop`/`restart`/`pause` act on the proxy; the
 * backends are in `backends`. Disposing stops all of them.
 */
export async function startProxy(options: ProxyOptions = {}): Promise<ProxyServer> {
  const count = options.backends ?? 3;
  const backendArgs = options.backendArgs ?? options.args ?? [];
  const backends: MemcachedServer[] = [];
  const dir = mkdtempSync(join(tmpdir(), "memkit-proxy-"));
  try {
    for (let i = 0; i < count; i++) backends.push(await startMemcached({ version: "1.6.38", args: backendArgs }));
    const config = (options.config ?? shardedConfig)(backends.map((b) => b.spec));
    const file = join(dir, "routes.lua");
    writeFileSync(file, config);
    const proxy = await startMemcached({
      version: "1.6.38",
      unix: options.unix,
      tls: options.tls,
      args: [...(options.args ?? []), "-o", `proxy_config=routelib,proxy_arg=${file}`],
    });
    // The proxy listens before it has connected to its backends: a first
    // request could get "SERVER_ERROR backend failure". Wait until a key on
    // every backend answers.
    await proxyReady(proxy, count);
    return {
      get spec() {
        return proxy.spec;
      },
      host: proxy.host,
      get port() {
        return proxy.port;
      },
      path: proxy.path,
      cert: proxy.cert,
      backends,
      config,
      stop: () => proxy.stop(),
      // A restarted server is an empty one: the backends restart too.
      restart: async () => {
        await proxy.stop();
        for (const backend of backends) await backend.restart();
        await proxy.restart();
        await proxyReady(proxy, count);
      },
      pause: () => proxy.pause(),
      resume: () => proxy.resume(),
      async [Symbol.asyncDispose]() {
        await proxy[Symbol.asyncDispose]();
        await Promise.all(backends.map((b) => b[Symbol.asyncDispose]()));
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await Promise.all(backends.map((b) => b[Symbol.asyncDispose]()));
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

/** Sends `mn` plus `mg` of several keys until none answers SERVER_ERROR (the backends are connected). */
async function proxyReady(proxy: MemcachedServer, backends: number): Promise<void> {
  const keys = Array.from({ length: backends * 8 }, (_, i) => `memkit-ready-${i}`);
  const request = keys.map((k) => `mg ${k}\r\n`).join("") + "mn\r\n";
  let last = "";
  for (let i = 0; i < 200; i++) {
    last = await exchange(proxy, request, "MN\r\n");
    if (!last.includes("SERVER_ERROR") && last.endsWith("MN\r\n")) return;
    await sleep(10);
  }
  throw new Error(`the proxy's backends did not answer: ${last.trim()}`);
}

/** One connection: write `request`, read until the reply ends with `end` (or 2 s pass). */
function exchange(server: MemcachedServer, request: string, end: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = server.path
      ? net.connect({ path: server.path })
      : server.cert
      ? tls.connect({ host: server.host, port: server.port, ca: server.cert })
      : net.connect({ host: server.host, port: server.port });
    let reply = "";
    const timer = setTimeout(() => done(), 2000);
    const done = () => {
      clearTimeout(timer);
      socket.removeAllListeners();
      socket.on("error", () => {});
      socket.destroy();
      resolve(reply);
    };
    socket.once(server.cert ? "secureConnect" : "connect", () => socket.write(request));
    socket.on("data", (d) => {
      reply += d.toString("latin1");
      if (reply.endsWith(end)) done();
    });
    socket.once("error", () => done());
    socket.once("close", () => done());
  });
}

/** A loopback server whose behaviour a test scripts. */
export interface FakeServer extends AsyncDisposable {
  readonly spec: string;
  readonly port: number;
  /** Bytes received so far, as latin1 text. */
  readonly received: () => string;
  /** How many connections were accepted. */
  readonly connections: () => number;
}

/**
 * Starts a fake server; `onData(socket, text, all)` decides what to send
 * back (nothing, garbage, a close...). Every socket is destroyed on dispose.
 */
export async function startFakeServer(
  onData: (socket: net.Socket, text: string, all: string) => void = () => {},
): Promise<FakeServer> {
  const sockets = new Set<net.Socket>();
  let received = "";
  let accepted = 0;
  const server = net.createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
    let all = "";
    socket.on("data", (chunk) => {
      const text = chunk.toString("latin1");
      all += text;
      received += text;
      onData(socket, text, all);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    spec: `127.0.0.1:${port}`,
    port,
    received: () => received,
    connections: () => accepted,
    async [Symbol.asyncDispose]() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      const gone = [...sockets].map((s) => new Promise<void>((r) => (s.once("close", () => r()), s.destroy())));
      await Promise.all([closed, ...gone]);
    },
  };
}

/** True when a memcached binary is available. */
export function haveMemcached(): boolean {
  try {
    execFileSync(BIN, ["-h"], { stdio: "ignore" });
    return true;
  } catch {
    return existsSync(BIN);
  }
}
