/**
 * Test servers: real memcached processes on free loopback ports (TCP, unix
 * socket or TLS), and tiny fake servers for behaviour memcached never shows
 * (silence, garbage). Each helper stops exactly what it started.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";

const BIN = process.env.MEMCACHED_BIN ?? "memcached";

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
  const bin = options.bin ?? BIN;

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
