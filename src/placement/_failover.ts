/**
 * HashClient's failover, as pymemcache's HashClient: a server whose calls
 * fail on the network is retried every `retryTimeout` ms, and after
 * `retryAttempts` failed retries it is dead: out of the ring (its keys move
 * to the other servers) until `deadTimeout` ms have passed.
 *
 * Where this differs from pymemcache, it is for concurrent calls or to
 * keep failures visible:
 * - calls already in flight when a failure was counted do not count again,
 *   so a burst of 100 failed gets is one failure, not a dead server;
 * - a server is dead as soon as the failure that uses up its retries
 *   happens, so the next call already goes elsewhere (pymemcache marks it
 *   at the next call and still sends that call to it);
 * - it comes back exactly `deadTimeout` ms after it died (pymemcache checks
 *   only once per `deadTimeout`, so up to twice that);
 * - within `retryTimeout` a call fails at once with an error, or gives its
 *   default with `ignoreExc` (pymemcache returns the default even without
 *   `ignore_exc`, hiding the outage); `retryTimeout: 0` retries at the very
 *   next call.
 *
 * @module
 */

import {
  MemcacheConnectionError,
  MemcacheIllegalInputError,
  MemcacheTimeoutError,
  MemcacheUnexpectedCloseError,
} from "../errors.ts";
import type { Hasher } from "./_rendezvous.ts";

/** What failover needs of a server's client. */
export interface NodeClient {
  readonly server: string;
  close(): Promise<void>;
}

/** One server: its client and its failover state. */
export interface Node<C extends NodeClient> {
  /** The name on the ring: `"host:port"` (IPv6 unbracketed) or the socket path, as pymemcache. */
  readonly name: string;
  readonly client: C;
  /** Set while the server is failing: retries made so far, and when it last failed. */
  failure: { attempts: number; at: number } | null;
  /** Bumped at each counted failure; a call that began before it does not count again. */
  generation: number;
  /** When the server was marked dead, or null while it is in the ring. */
  deadAt: number | null;
}

/** Failover settings (ms). */
export interface FailoverOptions {
  retryAttempts: number;
  retryTimeout: number;
  deadTimeout: number;
  /** Failed calls resolve to their command's default instead of throwing. */
  ignoreExc: boolean;
  /** Told when a server leaves the ring (with the failure that killed it) and when it rejoins. */
  onServer?: (type: "leave" | "rejoin", server: string, error?: unknown) => void;
}

/** Failures of the network path: the ones that count (pymemcache: `OSError`). */
function isNetworkError(error: unknown): boolean {
  return error instanceof MemcacheConnectionError || error instanceof MemcacheTimeoutError ||
    error instanceof MemcacheUnexpectedCloseError;
}

/** Places keys on live nodes and runs calls with failover. */
export class Failover<C extends NodeClient> {
  readonly #ring: Hasher;
  readonly #byName = new Map<string, Node<C>>();
  readonly #dead = new Set<Node<C>>();
  readonly #options: FailoverOptions;
  readonly #track: (closing: Promise<void>) => void;

  /** `track` receives the close of each client whose server died. */
  constructor(
    nodes: readonly Node<C>[],
    ring: Hasher,
    options: FailoverOptions,
    track: (closing: Promise<void>) => void,
  ) {
    this.#ring = ring;
    for (const node of nodes) {
      this.#byName.set(node.name, node);
      // A dead node carried over from an earlier ring (the server list changed) stays out until revived.
      if (node.deadAt !== null) {
        this.#dead.add(node);
        ring.removeNode(node.name);
      }
    }
    this.#options = options;
    this.#track = track;
  }

  /** The live node for a (checked) key, or null when every server is dead. */
  route(key: string): Node<C> | null {
    if (this.#dead.size > 0) this.#revive();
    const name = this.#ring.getNode(key);
    if (name === null) return null;
    const node = this.#byName.get(name)!;
    if (node.deadAt === null) return node;
    // Marked dead by the failover of an earlier ring, by a call still running when the server list changed.
    this.#dead.add(node);
    this.#ring.removeNode(name);
    return this.route(key);
  }

  /** The nodes in the ring now (dead ones whose deadTimeout has passed come back first), for server-wide calls. */
  live(): Node<C>[] {
    if (this.#dead.size > 0) this.#revive();
    return [...this.#byName.values()].filter((node) => node.deadAt === null);
  }

  /** The error of a call with no live server. */
  allDown(): MemcacheConnectionError {
    return new MemcacheConnectionError("All servers seem to be down right now");
  }

  /**
   * Runs `call` on `node`. With ignoreExc a failed call (not bad input)
   * resolves to `fallback()`, pymemcache's default for that command.
   * Within `retryTimeout` of a failure the node is not tried: the call
   * fails at once with `MemcacheConnectionError` (or gives the fallback).
   */
  async run<T>(node: Node<C>, call: (client: C) => Promise<T>, fallback?: () => T): Promise<T> {
    const { ignoreExc, retryTimeout } = this.#options;
    if (node.failure !== null) {
      const since = Date.now() - node.failure.at;
      if (since < retryTimeout) {
        if (fallback && ignoreExc) return fallback();
        throw new MemcacheConnectionError(
          `Server failed ${since} ms ago; it is retried ${retryTimeout} ms after a failure`,
          { server: node.client.server },
        );
      }
    }
    const generation = node.generation;
    try {
      const result = await call(node.client);
      if (node.failure !== null && node.generation === generation) node.failure = null; // a retry succeeded
      return result;
    } catch (error) {
      if (isNetworkError(error)) this.#failed(node, generation, error);
      if (fallback && ignoreExc && !(error instanceof MemcacheIllegalInputError)) return fallback();
      throw error;
    }
  }

  /** Counts a network failure of `node` seen by a call that began at `generation`. */
  #failed(node: Node<C>, generation: number, error: unknown): void {
    if (node.generation !== generation || node.deadAt !== null) return; // this outage is counted already
    node.generation++;
    const now = Date.now();
    if (node.failure === null) node.failure = { attempts: 0, at: now };
    else {
      node.failure.attempts++;
      node.failure.at = now;
    }
    if (node.failure.attempts >= this.#options.retryAttempts) {
      node.failure = null;
      node.deadAt = now;
      this.#dead.add(node);
      this.#ring.removeNode(node.name);
      this.#track(node.client.close());
      this.#options.onServer?.("leave", node.client.server, error);
    }
  }

  /** Puts dead servers back in the ring once they have been dead for deadTimeout. */
  #revive(): void {
    const now = Date.now();
    for (const node of this.#dead) {
      if (now - node.deadAt! >= this.#options.deadTimeout) {
        node.deadAt = null;
        this.#dead.delete(node);
        this.#ring.addNode(node.name);
        this.#options.onServer?.("rejoin", node.client.server);
      }
    }
  }
}
