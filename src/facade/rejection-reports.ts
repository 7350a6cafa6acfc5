import { createHash } from "node:crypto";
import { LRUCache } from "lru-cache";
import type { Clock } from "../shared/clock.js";

/** Rejections of one value within this long after its report are that report's. */
export const REPORT_WINDOW_MS = 30_000;
const MAX_TRACKED = 10_000;

/**
 * One report per rejected value: when WeChat refuses a token for many
 * forwarded calls at once (every SDK instance of a fleet), the first
 * rejection reports it and the others wait for that report, within a short
 * window. The broker's compare-and-refresh already makes concurrent reports
 * one refresh when the refresh changes the value; this also covers the
 * credentials WeChat gives back unchanged on a refresh (a user's token while
 * it is valid), which a later report would otherwise refresh again.
 */
export class RejectionReports {
  readonly #recent = new LRUCache<string, { readonly done: Promise<void>; endedAt?: number }>({
    max: MAX_TRACKED,
  });

  constructor(
    private readonly clock: Clock,
    private readonly windowMs = REPORT_WINDOW_MS,
  ) {}

  /** Runs `report` for `value` unless a report of it is running or ended within the window; waits for that one. */
  once(value: string, report: () => Promise<void>): Promise<void> {
    const id = createHash("sha256").update(value).digest("base64url");
    const held = this.#recent.get(id);
    if (held && (held.endedAt === undefined || this.clock.now() - held.endedAt < this.windowMs)) {
      return held.done;
    }
    const entry: { done: Promise<void>; endedAt?: number } = {
      done: report().finally(() => {
        // The window counts from the report's end: rejections answered meanwhile are its.
        entry.endedAt = this.clock.now();
      }),
    };
    this.#recent.set(id, entry);
    return entry.done;
  }
}
