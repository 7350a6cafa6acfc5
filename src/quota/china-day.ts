/**
 * WeChat's daily quotas are counted per China day: [00:00, 24:00) in
 * Asia/Shanghai, a fixed UTC+8 with no daylight saving time. So a day starts
 * at 16:00 UTC on the day before, and all of this is arithmetic on epoch ms.
 */
export const CHINA_UTC_OFFSET_MS = 8 * 60 * 60 * 1000;
export const DAY_MS = 24 * 60 * 60 * 1000;

/** Epoch ms of 00:00 Asia/Shanghai on the China day that contains `now`. */
export function chinaDayStart(now: number): number {
  return Math.floor((now + CHINA_UTC_OFFSET_MS) / DAY_MS) * DAY_MS - CHINA_UTC_OFFSET_MS;
}

/** Epoch ms of 00:00 Asia/Shanghai on the China day after the one that contains `now`. */
export function nextChinaDay(now: number): number {
  return chinaDayStart(now) + DAY_MS;
}

/** The China date containing `now`, as "YYYY-MM-DD" (used in counter keys). */
export function chinaDate(now: number): string {
  return new Date(chinaDayStart(now) + CHINA_UTC_OFFSET_MS).toISOString().slice(0, 10);
}
