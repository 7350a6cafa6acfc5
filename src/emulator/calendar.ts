const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;

/**
 * Buckets instants into the periods quota counters reset on (R27). The day
 * starts at 00:00 in a fixed UTC offset, 480 minutes (Asia/Shanghai, which has
 * no daylight saving) unless configured otherwise; months start on the 1st in
 * that same offset. Minutes are calendar minutes ("retry next minute").
 */
export interface Calendar {
  /** Whole minutes since the epoch. */
  minuteKey(ms: number): number;
  /** Local days since the epoch; changes at local midnight. */
  dayKey(ms: number): number;
  /** `year * 12 + month` in local time; changes at local midnight on the 1st. */
  monthKey(ms: number): number;
}

export function createCalendar(utcOffsetMinutes: number): Calendar {
  const offsetMs = utcOffsetMinutes * MINUTE_MS;
  return {
    minuteKey: (ms) => Math.floor(ms / MINUTE_MS),
    dayKey: (ms) => Math.floor((ms + offsetMs) / DAY_MS),
    monthKey(ms) {
      const local = new Date(ms + offsetMs);
      return local.getUTCFullYear() * 12 + local.getUTCMonth();
    },
  };
}
