/**
 * HashClient's servers: one node (client and failover state) per server,
 * the ring that places keys on them (the chosen hasher), failover over
 * that ring, and changes of the server list (auto discovery) with the
 * clients of servers that left kept until they are closed.
 *
 * @module
 */

import type { MemcacheConnectionError } from "../errors.ts";
import { Failover, type FailoverOptions, type Node, type NodeClient } from "./_failover.ts";
import { JumpHash, poolSeed } from "./_jump.ts";
import { KetamaHash, type KetamaServer } from "./_ketama.ts";
import { checkKey as checkWireKey } from "../protocol/_keys.ts";
import { binaryWireKey, encodeBase64 } from "../protocol/_meta.ts";
import { pythonRing } from "./_python_hash.ts";
import { type Hasher, RendezvousHash } from "./_rendezvous.ts";
import { parseServerSpec, type ServerAddress, type ServerSpec } from "../connection/transport.ts";
import { inContext } from "../protocol/_validate.ts";

/** The placements `HashClient` offers. */
export type HasherName = "rendezvous" | "ketama" | "modula" | "crc32" | "jump";
export const HASHERS: readonly HasherName[] = ["rendezvous", "ketama", "modula", "crc32", "jump"];

/** What placement needs of a server's client. */
export interface PlacedClient extends NodeClient {
  quit(): Promise<void>;
}

/** How keys are placed and checked. */
export interface PlacementOptions<C> {
  hasher: HasherName;
  /** With `"jump"`: the proxy pool's seed string. */
  seed: string | undefined;
  keyPrefix: string;
  allowUnicodeKeys: boolean;
  failover: FailoverOptions;
  /** Makes a server's client. */
  newClient: (spec: ServerSpec) => C;
}

/** The name a node has on the ring: pymemcache's "host:port" (no IPv6 brackets), or the socket path. */
function nodeName(address: ServerAddress): string {
  return "path" in address ? address.path : `${address.host}:${address.port}`;
}

/** A server-wide call's result for a server that failed under ignoreExc: left out. */
const NO_ANSWER: unique symbol = Symbol("no answer");

/** The servers of a HashClient, their ring and failover. */
export class Placement<C extends PlacedClient> {
  #servers: readonly string[] = [];
  #nodes: Node<C>[] = [];
  #failover!: Failover<C>;
  /** Each node's ketama entry. */
  readonly #ketama = new Map<string, KetamaServer>();
  /** Clients of servers that left the cluster (discovery): closed with the HashClient. */
  readonly #retired = new Set<C>();
  readonly #closing = new Set<Promise<void>>();
  readonly #options: PlacementOptions<C>;
  readonly #seed: bigint;

  /**
   * @throws {TypeError} for an invalid server spec.
   */
  constructor(specs: Iterable<ServerSpec>, options: PlacementOptions<C>) {
    this.#options = options;
    this.#seed = poolSeed(options.seed);
    const names = new Set<string>();
    for (const spec of specs) {
      const address = parseServerSpec(spec);
      const name = nodeName(address);
      if (names.has(name)) continue;
      names.add(name);
      this.#nodes.push(this.#newNode(spec, address, name));
    }
    this.#failover = this.#ring();
  }

  /** The servers, as their clients name them, in order. */
  get servers(): readonly string[] {
    return this.#servers;
  }

  #newNode(spec: ServerSpec, address: ServerAddress, name: string): Node<C> {
    const client = this.#options.newClient(spec);
    const point = "path" in address ? { node: name, host: address.path, port: 0 } : { node: name, ...address };
    this.#ketama.set(name, point);
    return { name, client, failure: null, generation: 0, deadAt: null };
  }

  /** A ring over the nodes, and failover over it; #servers follows. */
  #ring(): Failover<C> {
    this.#servers = this.#nodes.map((n) => n.client.server);
    const names = this.#nodes.map((n) => n.name);
    const { hasher } = this.#options;
    let ring: Hasher;
    if (hasher === "ketama") ring = new KetamaHash(names.map((name) => this.#ketama.get(name)!));
    else if (hasher === "jump") ring = new JumpHash(names, this.#seed);
    else ring = pythonRing(hasher, names) ?? new RendezvousHash(names);
    return new Failover(this.#nodes, ring, this.#options.failover, (closing) => this.#track(closing));
  }

  /**
   * Makes `specs` the servers: new ones get a client and enter the ring,
   * missing ones leave it (their clients quit once their replies are in);
   * the others keep their clients and failover state. True if any changed.
   * A spec that does not parse throws before anything changes.
   */
  setServers(specs: readonly ServerSpec[]): boolean {
    const wanted = new Map<string, [ServerSpec, ServerAddress]>();
    for (const spec of specs) {
      const address = parseServerSpec(spec);
      wanted.set(nodeName(address), [spec, address]);
    }
    const old = new Map(this.#nodes.map((node) => [node.name, node]));
    const leaving = this.#nodes.filter((node) => !wanted.has(node.name));
    // Jump hashing places by position: the same servers in another order are another ring.
    const reordered = this.#options.hasher === "jump" && [...wanted.keys()].some((n, i) => this.#nodes[i]?.name !== n);
    if (leaving.length === 0 && wanted.size === this.#nodes.length && !reordered) return false;
    const nodes: Node<C>[] = [];
    for (const [name, [spec, address]] of wanted) nodes.push(old.get(name) ?? this.#newNode(spec, address, name));
    this.#nodes = nodes;
    this.#failover = this.#ring();
    for (const node of leaving) {
      this.#ketama.delete(node.name);
      this.#retired.add(node.client);
      this.#track(node.client.quit());
    }
    return true;
  }

  /**
   * Checks a key; returns the string it is placed by: the key without the
   * prefix (a meta command's binary key: its base64), as pymemcache; with
   * `"jump"` the key as sent (prefix included; a binary key's base64).
   */
  placeKey(key: string | Uint8Array): string {
    const { keyPrefix, allowUnicodeKeys, hasher } = this.#options;
    if (typeof key !== "string" && key instanceof Uint8Array) {
      const wire = binaryWireKey(key, keyPrefix);
      return hasher === "jump" ? wire : encodeBase64(key);
    }
    const wire = checkWireKey(key, keyPrefix, allowUnicodeKeys);
    return hasher === "jump" ? wire : key;
  }

  /** Checks the key and finds its node in the ring (null: every server is dead). */
  route(key: string | Uint8Array): Node<C> | null {
    return this.#failover.route(this.placeKey(key));
  }

  /** The error of a call with no live server. */
  allDown(): MemcacheConnectionError {
    return this.#failover.allDown();
  }

  /** Runs `call` on `node` with failover (see {@linkcode Failover.run}). */
  run<T>(node: Node<C>, call: (client: C) => Promise<T>, fallback?: () => T): Promise<T> {
    return this.#failover.run(node, call, fallback);
  }

  /** A single-key call: routed, with failover. */
  key<T>(command: string, key: string, call: (client: C) => Promise<T>, fallback?: () => T): Promise<T> {
    let node: Node<C> | null;
    try {
      node = this.route(key);
    } catch (error) {
      return Promise.reject(inContext(error, command));
    }
    if (node === null) {
      return fallback && this.#options.failover.ignoreExc
        ? Promise.resolve(fallback())
        : Promise.reject(this.#failover.allDown());
    }
    return this.#failover.run(node, call, fallback);
  }

  /** Groups items by their key's node; keys of no node (all dead) throw, or are skipped with `skip`. */
  group<K>(command: string, items: Iterable<K>, keyOf: (item: K) => string, skip: boolean): Map<Node<C>, K[]> {
    const groups = new Map<Node<C>, K[]>();
    const list = [...items];
    try {
      for (const item of list) this.placeKey(keyOf(item)); // all before any I/O
    } catch (error) {
      throw inContext(error, command);
    }
    for (const item of list) {
      const node = this.route(keyOf(item));
      if (node === null) {
        if (skip) continue;
        throw this.#failover.allDown();
      }
      const group = groups.get(node);
      if (group) group.push(item);
      else groups.set(node, [item]);
    }
    return groups;
  }

  /**
   * A server-wide call on every live server, in parallel, each through
   * failover as a key command. Dead servers (out of the ring) are skipped.
   * With ignoreExc a failing server is left out of `answers`; without it,
   * the first failure rejects once every server is done. With every server
   * dead: "All servers seem to be down right now", or no answers with
   * ignoreExc. `complete`: every server answered.
   */
  async all<T>(call: (client: C) => Promise<T>): Promise<{ answers: Map<string, T>; complete: boolean }> {
    const live = this.#failover.live();
    if (live.length === 0 && !this.#options.failover.ignoreExc) throw this.#failover.allDown();
    const settled = await Promise.allSettled(
      live.map((n) => this.#failover.run<T | typeof NO_ANSWER>(n, call, () => NO_ANSWER)),
    );
    const answers = new Map<string, T>();
    settled.forEach((outcome, i) => {
      if (outcome.status === "rejected") throw outcome.reason;
      if (outcome.value !== NO_ANSWER) answers.set(live[i].client.server, outcome.value as T);
    });
    return { answers, complete: answers.size === this.#nodes.length };
  }

  /** Every client: the servers' and those of servers that left. With `forget`, the latter are let go. */
  clients(forget = false): C[] {
    const clients = [...this.#nodes.map((n) => n.client), ...this.#retired];
    if (forget) this.#retired.clear();
    return clients;
  }

  #track(closing: Promise<void>): void {
    this.#closing.add(closing);
    closing.finally(() => this.#closing.delete(closing));
  }

  /** Resolves once every close or quit placement started (dead servers, servers that left) is done. */
  async settled(): Promise<void> {
    while (this.#closing.size > 0) await Promise.all(this.#closing);
  }
}
