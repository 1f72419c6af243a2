/**
 * The chaos proxy of the reliability harnesses: a TCP proxy in front of a
 * real memcached that adds latency, stalls, cuts a connection mid-reply,
 * truncates or resets it, per connection and per direction. Closes what it
 * opens, for Deno's sanitizers.
 */
import net from "node:net";
import { delay } from "./_hostile.ts";
import { closeServer, resetSocket } from "./_hostile_server.ts";

// ---------------------------------------------------------------- chaos proxy

/** One direction of a proxied connection: client→server (`up`) or server→client (`down`). */
export class Direction {
  /** ms every chunk is held before it is forwarded. */
  latency = 0;
  /** Bytes forwarded so far. */
  forwarded = 0;
  #stalled = false;
  #truncateAt = Infinity;
  #cutAt = Infinity;
  #cutByReset = false;
  #queue: { data: Uint8Array; at: number }[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  constructor(
    private readonly write: (data: Uint8Array) => void,
    private readonly cut: (reset: boolean) => void,
  ) {}

  /** Holds everything from now on until {@linkcode Direction.resume}. */
  stall(): this {
    this.#stalled = true;
    this.#clearTimer();
    return this;
  }

  /** Forwards what a stall held, and everything after. */
  resume(): this {
    this.#stalled = false;
    this.#pump();
    return this;
  }

  /**
   * Forwards at most `n` more bytes, then drops the rest silently (the
   * sockets stay open). A stream once truncated stays so: TCP never skips
   * bytes and goes on, and neither does this proxy.
   */
  truncateAfter(n: number): this {
    this.#truncateAt = Math.min(this.#truncateAt, this.forwarded + n);
    return this;
  }

  /** Forwards at most `n` more bytes, then closes both sockets (with a reset if asked). */
  cutAfter(n: number, options: { reset?: boolean } = {}): this {
    if (this.forwarded + n < this.#cutAt) {
      this.#cutAt = this.forwarded + n;
      this.#cutByReset = options.reset ?? false;
    }
    if (n === 0) this.cut(this.#cutByReset);
    return this;
  }

  /** Bytes received and not yet forwarded. */
  get held(): number {
    return this.#queue.reduce((n, q) => n + q.data.length, 0);
  }

  push(data: Uint8Array): void {
    if (this.#closed) return;
    this.#queue.push({ data, at: Date.now() + this.latency });
    this.#pump();
  }

  close(): void {
    this.#closed = true;
    this.#queue = [];
    this.#clearTimer();
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #pump(): void {
    if (this.#stalled || this.#closed || this.#timer !== undefined) return;
    while (this.#queue.length > 0) {
      const head = this.#queue[0];
      const wait = head.at - Date.now();
      if (wait > 0) {
        this.#timer = setTimeout(() => {
          this.#timer = undefined;
          this.#pump();
        }, wait);
        return;
      }
      this.#queue.shift();
      let data = head.data;
      const limit = Math.min(this.#truncateAt, this.#cutAt);
      if (this.forwarded + data.length > limit) data = data.subarray(0, Math.max(0, limit - this.forwarded));
      if (data.length > 0) this.write(data);
      this.forwarded += data.length;
      if (this.forwarded >= this.#cutAt) {
        this.cut(this.#cutByReset);
        return;
      }
      if (this.forwarded >= this.#truncateAt) this.#queue = []; // and whatever comes later is dropped on arrival
    }
  }

  /** True once a truncation has dropped bytes. */
  get truncated(): boolean {
    return this.forwarded >= this.#truncateAt;
  }
}

/** One proxied connection. */
export interface ProxyLink {
  readonly id: number;
  /** client → memcached */
  readonly up: Direction;
  /** memcached → client */
  readonly down: Direction;
  /** Closes both sockets (FIN). */
  cut(): void;
  /** Resets both sockets (RST where the runtime can). */
  reset(): void;
  readonly closed: boolean;
}

/** A running chaos proxy. */
export interface ChaosProxy extends AsyncDisposable {
  readonly spec: string;
  readonly port: number;
  /** Links open now. */
  links(): ProxyLink[];
  /** Connections accepted so far. */
  connections(): number;
  /** Set faults on each new link here (it runs before any byte is forwarded). */
  onLink: ((link: ProxyLink) => void) | undefined;
  /** While true, new connections are reset at once. */
  refuse: boolean;
  /** Cuts every open link. */
  cutAll(): void;
  /** Resets every open link. */
  resetAll(): void;
}

/** A TCP proxy on a free loopback port in front of `target` (e.g. a memcached's port). */
export async function startChaosProxy(
  target: { host?: string; port: number | (() => number) },
): Promise<ChaosProxy> {
  const sockets = new Set<net.Socket>();
  const links = new Set<ProxyLink>();
  let accepted = 0;
  const proxy: ChaosProxy = {
    spec: "",
    port: 0,
    links: () => [...links],
    connections: () => accepted,
    onLink: undefined,
    refuse: false,
    cutAll: () => [...links].forEach((l) => l.cut()),
    resetAll: () => [...links].forEach((l) => l.reset()),
    [Symbol.asyncDispose]: async () => {
      for (const link of [...links]) link.cut();
      await closeServer(server, sockets);
    },
  };
  const server = net.createServer((client) => {
    const id = accepted++;
    sockets.add(client);
    client.setNoDelay(true);
    client.on("error", () => {});
    client.on("close", () => sockets.delete(client));
    if (proxy.refuse) {
      resetSocket(client);
      return;
    }
    const port = typeof target.port === "function" ? target.port() : target.port;
    const upstream = net.connect({ host: target.host ?? "127.0.0.1", port });
    sockets.add(upstream);
    upstream.setNoDelay(true);
    upstream.on("error", () => {});
    let closed = false;
    const end = (reset: boolean) => {
      if (closed) return;
      closed = true;
      links.delete(link);
      up.close();
      down.close();
      if (reset) {
        resetSocket(client);
        resetSocket(upstream);
      } else {
        client.destroy();
        upstream.destroy();
      }
    };
    const pending: Uint8Array[] = [];
    let connected = false;
    const up = new Direction((data) => {
      if (connected) upstream.write(data);
      else pending.push(data);
    }, end);
    const down = new Direction((data) => client.write(data), end);
    const link: ProxyLink = {
      id,
      up,
      down,
      cut: () => end(false),
      reset: () => end(true),
      get closed() {
        return closed;
      },
    };
    links.add(link);
    upstream.on("connect", () => {
      connected = true;
      for (const data of pending.splice(0)) upstream.write(data);
    });
    upstream.on("close", () => {
      sockets.delete(upstream);
      // Pass the server's close on once what it sent has been forwarded.
      const finish = () => (down.held === 0 ? end(false) : setTimeout(finish, 5));
      if (!closed) finish();
    });
    client.on("close", () => end(false));
    client.on("data", (chunk: Uint8Array) => up.push(new Uint8Array(chunk)));
    upstream.on("data", (chunk: Uint8Array) => down.push(new Uint8Array(chunk)));
    proxy.onLink?.(link);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  Object.assign(proxy, { spec: `127.0.0.1:${port}`, port });
  return proxy;
}

/** How many faults of each kind {@linkcode injectFault} caused. */
export interface FaultCounts {
  latency: number;
  stall: number;
  cut: number;
  truncate: number;
  reset: number;
}

/** Fresh fault counts. */
export function faultCounts(): FaultCounts {
  return { latency: 0, stall: 0, cut: 0, truncate: 0, reset: 0 };
}

/**
 * One random fault on one random link of `proxy` (most often on the reply
 * direction): latency, a stall resumed up to `maxStallMs` later (its timer
 * goes into `timers`, for the caller to clear), a cut (a reset instead of
 * a close when `resetCuts` and a coin say so), a truncation or a reset.
 * Nothing when no link is open.
 */
export function injectFault(
  proxy: ChaosProxy,
  rng: { int(n: number): number; chance(p: number): boolean; pick<T>(items: readonly T[]): T },
  faults: FaultCounts,
  timers: Set<ReturnType<typeof setTimeout>>,
  { maxStallMs = 800, resetCuts = false } = {},
): void {
  const links = proxy.links();
  if (links.length === 0) return;
  const link = rng.pick(links);
  const dir = rng.chance(0.8) ? link.down : link.up;
  const roll = rng.int(5);
  if (roll === 0) (dir.latency = rng.int(150), faults.latency++);
  else if (roll === 1) {
    dir.stall();
    faults.stall++;
    const timer = setTimeout(() => (timers.delete(timer), dir.resume()), 100 + rng.int(maxStallMs - 100));
    timers.add(timer);
  } else if (roll === 2) {
    (dir.cutAfter(rng.int(5000), resetCuts ? { reset: rng.chance(0.5) } : undefined), faults.cut++);
  } else if (roll === 3) (dir.truncateAfter(rng.int(5000)), faults.truncate++);
  else (link.reset(), faults.reset++);
}

/** A load {@linkcode faultsUnderLoad} can run, pause for a check, and stop. */
export interface PausableLoad {
  start(): void;
  pause(): Promise<unknown>;
  resume(): void;
  stop(): Promise<unknown>;
}

/**
 * `seconds` of random faults on `proxy` while `load` runs: new links get up
 * to 80 ms of latency now and then, one {@linkcode injectFault} every
 * 50–200 ms, and about one round in ten pauses the load and runs `check`
 * (the server still holds every acknowledged write). At the end (or on a
 * failure) pending stall timers are cleared and the load is stopped.
 * Returns what faults were caused.
 */
export async function faultsUnderLoad(
  proxy: ChaosProxy,
  rng: { int(n: number): number; chance(p: number): boolean; pick<T>(items: readonly T[]): T },
  seconds: number,
  load: PausableLoad,
  check: () => Promise<unknown>,
): Promise<FaultCounts> {
  const faults = faultCounts();
  proxy.onLink = (link) => {
    if (rng.chance(0.3)) link.down.latency = rng.int(80);
  };
  const timers = new Set<ReturnType<typeof setTimeout>>();
  load.start();
  try {
    const until = Date.now() + seconds * 1000;
    while (Date.now() < until) {
      await delay(50 + rng.int(150));
      injectFault(proxy, rng, faults, timers);
      if (rng.chance(0.1)) {
        await load.pause();
        await check();
        load.resume();
      }
    }
  } finally {
    for (const timer of timers) clearTimeout(timer);
    await load.stop();
  }
  return faults;
}
