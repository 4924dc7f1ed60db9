import { describe, expect, it } from 'vitest';
import { createThrottle } from './throttle.js';

describe('--max-rows-per-sec throttle', () => {
  it('holds a single take to the rate: 150 rows at 1000 rows/s take at least 150 ms', async () => {
    const throttle = createThrottle(1000);
    const started = Date.now();
    await throttle.take(150);
    expect(Date.now() - started).toBeGreaterThanOrEqual(145);
  });

  it('takes in turn add up: 3 × 50 rows at 1000 rows/s take at least 150 ms, however they interleave', async () => {
    const throttle = createThrottle(1000);
    const started = Date.now();
    await Promise.all([throttle.take(50), throttle.take(50), throttle.take(50)]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(145);
  });

  it('without a limit, never waits for a timer', async () => {
    let done = false;
    void createThrottle(undefined).take(1_000_000).then(() => (done = true));
    await new Promise((r) => setImmediate(r));
    expect(done).toBe(true);
  });
});
