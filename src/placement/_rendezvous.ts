/**
 * Rendezvous (highest random weight) hashing, placing keys exactly as
 * pymemcache's `RendezvousHash`: every node scores
 * `murmur3_32("<node>-<key>", seed)` and the highest score wins; a tie goes
 * to the node whose name is larger (string comparison).
 *
 * @module
 */

import { murmur3_32 } from "./_murmur3.ts";

/** A set of nodes keys are placed on. */
export interface Hasher {
  /** Adds a node (no-op if present). */
  addNode(node: string): void;
  /** Removes a node (no-op if absent). */
  removeNode(node: string): void;
  /** The node for `key`, or `null` when there are no nodes. */
  getNode(key: string): string | null;
}

/** pymemcache's `RendezvousHash`, with node names as given. */
export class RendezvousHash implements Hasher {
  readonly nodes: string[] = [];
  readonly seed: number;

  constructor(nodes: Iterable<string> = [], seed = 0) {
    this.seed = seed;
    for (const node of nodes) this.addNode(node);
  }

  addNode(node: string): void {
    if (!this.nodes.includes(node)) this.nodes.push(node);
  }

  removeNode(node: string): void {
    const at = this.nodes.indexOf(node);
    if (at !== -1) this.nodes.splice(at, 1);
  }

  getNode(key: string): string | null {
    let best = -1;
    let winner: string | null = null;
    for (const node of this.nodes) {
      const score = murmur3_32(`${node}-${key}`, this.seed);
      if (score > best) {
        best = score;
        winner = node;
      } else if (score === best && winner !== null && node > winner) {
        winner = node;
      }
    }
    return winner;
  }
}
