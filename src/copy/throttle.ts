/**
 * --max-rows-per-sec for one process: a pacing limiter. Each take(n) reserves the next n/rate
 * seconds of the budget and waits until its reservation ends, so the rate stays at the limit
 * however the rows come (a chunk at a time or a batch at a time), from the first rows on: a table
 * of one chunk is held to it too (waiting for the reservation's start let the first chunk through
 * at once).
 */
export interface Throttle {
  take(rows: number): Promise<void>;
}

export function createThrottle(rowsPerSec: number | undefined): Throttle {
  if (!rowsPerSec) return { take: async () => {} };
  let next = Date.now();
  return {
    async take(rows) {
      const now = Date.now();
      next = Math.max(now, next) + (rows / rowsPerSec) * 1000;
      const end = next;
      if (end > now) await new Promise((r) => setTimeout(r, end - now));
    },
  };
}
