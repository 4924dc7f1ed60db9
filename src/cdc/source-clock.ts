/**
 * Source commit times (Debezium's source.ts_ms, SQL Server CDC's commit times) come from the legacy
 * server's clock; lags set them against the control server's. A time ahead of the control clock
 * says the two disagree, and by how much is not known: now − that time, clamped to 0, read as
 * caught up a sync as far behind as the legacy clock is fast. Such a lag is unknown, not 0.
 */

/** How far ahead a source time may be before it counts: NTP keeps clocks well within this. */
export const SOURCE_CLOCK_TOLERANCE_MS = 1000;

/** Seconds a source time is ahead of `nowMs` (the control server's clock) beyond the tolerance; null when it is not. */
export function sourceTimeAheadSeconds(sourceTsMs: number, nowMs: number): number | null {
  const ahead = sourceTsMs - nowMs;
  return ahead > SOURCE_CLOCK_TOLERANCE_MS ? ahead / 1000 : null;
}

/** What a gate or status says of such a time. */
export function sourceTimeAheadMessage(where: string, aheadSeconds: number): string {
  return (
    `${where}: the source time of the last applied change is ${aheadSeconds.toFixed(1)} s ahead of the control store's clock ` +
    `(the legacy server's clock is fast), so the lag is unknown; set the clocks right (NTP)`
  );
}
