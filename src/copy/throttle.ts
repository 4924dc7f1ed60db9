/**
 * --max-rows-per-sec for one process: a pacing limiter. Each take(n) reserves the next n/rate
 * seconds of the budget and waits until its reservation starts, so the long-run rate stays at
 * the limit however the rows come (a chunk at a time or a batch at a time).
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
      const start = Math.max(now, next);
      next = start + (rows / rowsPerSec) * 1000;
      if (start > now) await new Promise((r) => setTimeout(r, start - now));
    },
  };
}
