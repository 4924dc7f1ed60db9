/**
 * When a copying process must hold its writes although nobody told it to: its leases may pass to
 * another process. A lease lasts lease_seconds from its last renewal; another process may take a
 * chunk over once it has expired and re-read its rows, so a write of ours after that could put
 * older rows over newer ones. Writes wait once no renewal has succeeded for half the lease, well
 * before any lease this process holds can expire, until one succeeds (src/copy/run.ts).
 */
export function leaseSafetyProblem(lastRenewalMs: number, nowMs: number, leaseSeconds: number): string | null {
  const silentMs = nowMs - lastRenewalMs;
  if (silentMs <= (leaseSeconds * 1000) / 2) return null;
  return (
    `no lease renewal for ${Math.round(silentMs / 1000)} s (the control store does not answer): ` +
    `writes wait, as another process may take the chunks over soon (copy.lease_seconds ${leaseSeconds})`
  );
}
