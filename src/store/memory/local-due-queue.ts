import type { DueQueue } from "../../core/ports/due-queue.js";
import type { Clock } from "../../shared/clock.js";
import { TimerTable } from "../../shared/timer-table.js";

/** The single-node queue: one timer per id on the injected clock. */
export class LocalDueQueue implements DueQueue {
  readonly #timers: TimerTable;
  #handler: ((id: string) => void) | undefined;

  constructor(clock: Clock) {
    this.#timers = new TimerTable(clock);
  }

  async plan(id: string, at: number): Promise<void> {
    this.#timers.set(id, at, () => this.#handler?.(id));
  }

  async planIfAbsent(id: string, at: number): Promise<void> {
    if (this.#timers.at(id) === undefined) await this.plan(id, at);
  }

  start(handler: (id: string) => void): void {
    this.#handler = handler;
  }

  async release(_id: string): Promise<void> {}

  dueAt(id: string): number | undefined {
    return this.#timers.at(id);
  }

  async close(): Promise<void> {
    this.#timers.close();
  }
}
