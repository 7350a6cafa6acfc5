import { UpdateQueue } from "./update-queue.js";

/** The open watches, per credential id, each with its own queue of updates. */
export class WatchHub<T> {
  readonly #subscribers = new Map<string, Set<UpdateQueue<T>>>();

  /**
   * Opens a queue that receives every update published for `id` from now on;
   * its `next()` rejects once `signal` aborts.
   */
  open(id: string, signal: AbortSignal): UpdateQueue<T> {
    const queue = new UpdateQueue<T>(signal);
    const set = this.#subscribers.get(id) ?? new Set<UpdateQueue<T>>();
    this.#subscribers.set(id, set);
    set.add(queue);
    return queue;
  }

  close(id: string, queue: UpdateQueue<T>): void {
    queue.close();
    const set = this.#subscribers.get(id);
    if (!set) return;
    set.delete(queue);
    if (set.size === 0) this.#subscribers.delete(id);
  }

  publish(id: string, item: T): void {
    for (const q of this.#subscribers.get(id) ?? []) q.push(item);
  }

  /**
   * Ends the watches of every id `reasonFor` gives a reason for (a config
   * reload removed its credential): their consumers' `next()` rejects with it.
   */
  fail(reasonFor: (id: string) => unknown): void {
    for (const [id, set] of this.#subscribers) {
      const reason = reasonFor(id);
      if (reason === undefined) continue;
      for (const q of set) q.fail(reason);
    }
  }

  /** Ends every watch of `id`: their consumers' `next()` rejects with `reason`. */
  failOne(id: string, reason: unknown): void {
    for (const q of this.#subscribers.get(id) ?? []) q.fail(reason);
  }

  /** Number of open watches. */
  get size(): number {
    let n = 0;
    for (const s of this.#subscribers.values()) n += s.size;
    return n;
  }
}
