import type { Clock } from "../shared/clock.js";
import type { Logger } from "../shared/logger.js";

/** How long repeats of one refusal are counted before their summary line. */
export const REFUSAL_WINDOW_MS = 60_000;
/** Distinct refusals tracked at once; beyond, they share one overflow count. */
export const MAX_TRACKED_REFUSALS = 10_000;

export interface RefusalLogOptions {
  audit: Logger;
  /** Windows run on this clock (a fake one in tests). */
  clock: Clock;
  windowMs?: number;
  maxTracked?: number;
}

interface Tracked {
  /** The fields every line about this refusal repeats (event, client, address, method). */
  readonly fields: Record<string, unknown>;
  repeats: number;
  cancel: () => void;
}

/** Key of the shared count once {@link MAX_TRACKED_REFUSALS} is reached. */
const OVERFLOW = "\0overflow";

/**
 * Writes refusals to the audit stream without letting a flood flood it. The
 * first refusal of a kind (same event, client, address and method) is
 * written in full; repeats within the window are only counted, and at the
 * window's end one line says how many there were. A kind stays tracked while
 * it keeps repeating, so a sustained flood costs one line per window.
 *
 * One instance serves every service of a broker (TokenService and
 * AdminService write to one audit stream), so a peer probing both is still
 * one count per kind.
 */
export class RefusalLog {
  readonly #audit: Logger;
  readonly #clock: Clock;
  readonly #windowMs: number;
  readonly #maxTracked: number;
  readonly #tracked = new Map<string, Tracked>();
  #closed = false;

  constructor(o: RefusalLogOptions) {
    this.#audit = o.audit;
    this.#clock = o.clock;
    this.#windowMs = o.windowMs ?? REFUSAL_WINDOW_MS;
    this.#maxTracked = o.maxTracked ?? MAX_TRACKED_REFUSALS;
  }

  /**
   * One refusal. `kind` holds only the fields that identify it, `detail`
   * what the full line adds (code, message, app, ...).
   */
  record(kind: Record<string, unknown>, detail: Record<string, unknown>, msg: string): void {
    const key = JSON.stringify(kind);
    const seen = this.#tracked.get(key);
    if (seen) {
      seen.repeats++;
      return;
    }
    if (this.#tracked.size >= this.#maxTracked) {
      const overflow = this.#tracked.get(OVERFLOW);
      if (overflow) {
        overflow.repeats++;
        return;
      }
      // Room for the overflow count is kept by tracking one more key.
      this.#audit.warn(
        { event: "refusals_overflow", tracked: this.#maxTracked },
        "security: too many distinct refusals at once; counting the rest together",
      );
      this.#track(OVERFLOW, { event: "refusals_overflow" }, 1);
      return;
    }
    this.#audit.warn({ ...kind, ...detail }, msg);
    this.#track(key, kind, 0);
  }

  /** Writes the counts of every open window and stops. Later refusals are written in full. */
  close(): void {
    this.#closed = true;
    for (const key of [...this.#tracked.keys()]) this.#endWindow(key);
  }

  #track(key: string, fields: Record<string, unknown>, repeats: number): void {
    if (this.#closed) return;
    const tracked: Tracked = { fields, repeats, cancel: () => {} };
    this.#tracked.set(key, tracked);
    tracked.cancel = this.#clock.schedule(() => this.#endWindow(key), this.#windowMs);
  }

  #endWindow(key: string): void {
    const tracked = this.#tracked.get(key);
    if (!tracked) return;
    tracked.cancel();
    this.#tracked.delete(key);
    if (tracked.repeats === 0) return;
    this.#audit.warn(
      { ...tracked.fields, repeated: tracked.repeats, windowMs: this.#windowMs },
      `security: ${String(tracked.fields.event)} repeated ${tracked.repeats} times`,
    );
    // Still going: keep counting, so a flood stays one line per window.
    this.#track(key, tracked.fields, 0);
  }
}
