/**
 * What a connection keeps its waiting requests in, and how it fails them:
 * a FIFO with O(1) removal at the head, and rejection in slices, so that a
 * long queue never stalls the event loop.
 *
 * @module
 */

/** A FIFO without `shift()`'s O(n): a head index, compacted now and then. */
export class Queue<T> {
  items: T[] = [];
  head = 0;
  get size(): number {
    return this.items.length - this.head;
  }
  peek(): T | undefined {
    return this.items[this.head];
  }
  push(item: T): void {
    this.items.push(item);
  }
  shift(): T | undefined {
    const item = this.items[this.head];
    if (item === undefined) return undefined;
    this.items[this.head++] = undefined as T;
    if (this.head === this.items.length) {
      this.items.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
  drain(): T[] {
    const rest = this.items.slice(this.head);
    this.items = [];
    this.head = 0;
    return rest;
  }
}

/** Requests rejected in one go before the loop gets a turn; see {@linkcode rejectAll}. */
const REJECT_SLICE = 2048;

/**
 * Rejects `requests` in order (oldest deadline first). A long queue is
 * rejected a slice per macrotask, so each slice's callers run before the
 * next slice is rejected and the event loop never stalls for the whole
 * queue: with 100,000 waiting, the oldest settle first and none past its
 * own deadline. Resolves when the last is rejected.
 */
export function rejectAll(
  requests: { command: string; reject: (error: Error) => void }[],
  errorOf: (command: string) => Error,
): Promise<void> | undefined {
  const slice = (from: number) => {
    const to = Math.min(requests.length, from + REJECT_SLICE);
    for (let i = from; i < to; i++) requests[i].reject(errorOf(requests[i].command));
    return to;
  };
  let at = slice(0);
  if (at === requests.length) return undefined;
  return new Promise<void>((resolve) => {
    const next = () => {
      at = slice(at);
      if (at === requests.length) resolve();
      else setTimeout(next, 0);
    };
    setTimeout(next, 0);
  });
}
