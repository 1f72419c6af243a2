/**
 * A mixed load of meta commands and getOrSet for the chaos harness
 * (chaos_meta_test.ts), checked against the {@linkcode Invariants} ledger:
 * metaSet writes the ledger follows (an acknowledged one must be on the
 * server), metaGet and metaGetMany whose values must name their key, and
 * getOrSet (with recacheWithin and leases, on keys every lane shares) whose
 * loader must be asked for the key of its call and whose value must name
 * that key.
 */
import type { MetaResult } from "../../mod.ts";
import { type Rng, taggedValue } from "./_hostile.ts";
import { Lanes } from "./_hostile_load.ts";
import type { Invariants } from "./_hostile_ledger.ts";

/** What the load needs of a client (Client, PooledClient and HashClient all have it). */
export interface MetaLoadClient {
  metaGet(key: string): Promise<MetaResult>;
  metaGetMany(keys: Iterable<string>): Promise<Map<unknown, MetaResult>>;
  metaSet(key: string, value: unknown): Promise<MetaResult>;
  getOrSet(
    key: string,
    loader: (key: string) => unknown,
    options: {
      ttl: number;
      recacheWithin?: number;
      lease?: { ttl: number; wait: number } | false;
      onError?: (error: unknown) => void;
    },
  ): Promise<unknown>;
}

/** Options of {@linkcode MetaLoad}. */
export interface MetaLoadOptions {
  clients: { name: string; client: MetaLoadClient }[];
  inv: Invariants;
  rng: Rng;
  /**
   * The `timeout` the clients were made with (ms). getOrSet gets three times
   * that and the lease wait: its longest path is an `mg` that finds another
   * caller's lease, polls within the wait with the last `mg` starting just
   * before it ends and then winning, and the `ms` of its value.
   */
  timeout: number;
  /** Concurrent lanes. @default {6} */
  lanes?: number;
  /** Prefix of every key. @default {"meta"} */
  prefix?: string;
}

/** The lease wait of the load's getOrSet calls, ms. */
const LEASE_WAIT = 100;

/** Lanes of meta calls and getOrSet; `pause()` lets a harness verify or kill the server with nothing in flight. */
export class MetaLoad extends Lanes {
  readonly #o: Required<MetaLoadOptions>;
  /** Loader runs, and loader runs asked for another key than their call's (must stay 0). */
  loads = 0;
  crossedLoads = 0;

  constructor(options: MetaLoadOptions) {
    const o = { lanes: 6, prefix: "meta", ...options };
    super(o.lanes, o.rng);
    this.#o = o;
  }

  protected laneStep(lane: number): () => Promise<void> {
    const { rng, inv, timeout, prefix, lanes } = this.#o;
    const own = (i: number) => `${prefix}:s${lane}x${i}`;
    const anyOwn = () => `${prefix}:s${rng.int(lanes)}x${rng.int(30)}`;
    const shared = () => `${prefix}:g${rng.int(40)}`;
    return async () => {
      const { name, client } = rng.pick(this.#o.clients);
      const roll = rng.int(100);
      if (roll < 40) {
        const key = shared();
        const options = {
          ttl: rng.chance(0.5) ? 2 : 60,
          recacheWithin: rng.chance(0.5) ? 30 : undefined,
          lease: rng.chance(0.5) ? { ttl: 2, wait: LEASE_WAIT } : false as const,
          onError: () => {},
        };
        const loader = (asked: string) => {
          this.loads++;
          if (asked !== key) {
            this.crossedLoads++, inv.violation("wrong", `getOrSet ${key}'s loader was asked for ${asked}`);
          }
          const serial = inv.serial();
          inv.issued(asked, serial);
          return taggedValue(asked, serial, 20 + rng.int(300));
        };
        await inv.call(
          `${name} getOrSet ${key}`,
          3 * timeout + LEASE_WAIT,
          () => client.getOrSet(key, loader, options),
          (v) => (v === null || v === undefined ? `getOrSet ${key} gave ${v}` : inv.checkRead(key, v)),
        );
      } else if (roll < 60) {
        const key = rng.chance(0.5) ? shared() : anyOwn();
        await inv.call(`${name} metaGet ${key}`, timeout, () => client.metaGet(key), (r) => this.#read(key, r));
      } else if (roll < 70) {
        const keys = Array.from({ length: 2 + rng.int(10) }, () => (rng.chance(0.5) ? shared() : anyOwn()));
        await inv.call(`${name} metaGetMany`, timeout, () => client.metaGetMany(keys), (found) => {
          for (const [k, r] of found) {
            if (typeof k !== "string" || !keys.includes(k)) return `metaGetMany returned ${String(k)}, not asked for`;
            const problem = this.#read(k, r);
            if (problem) return problem;
          }
          return undefined;
        });
      } else {
        const key = own(rng.int(30));
        const value = taggedValue(key, inv.serial(), 10 + rng.int(rng.chance(0.05) ? 40_000 : 1000));
        await inv.write(`${name} metaSet ${key}`, key, value, timeout, async () => {
          const r = await client.metaSet(key, value);
          return r.stored === true ? true : r;
        });
      }
    };
  }

  /**
   * What is wrong with a metaGet of `key`: its value must name the key,
   * except the empty item a getOrSet lease (`mg N`) creates on a shared
   * key while its winner loads (memcached's own placeholder).
   */
  #read(key: string, r: MetaResult): string | undefined {
    const empty = r.value === "" || (r.value instanceof Uint8Array && r.value.length === 0);
    if (empty && key.startsWith(`${this.#o.prefix}:g`)) return undefined;
    return this.#o.inv.checkRead(key, r.value);
  }
}
