import { describe, expect, it } from 'vitest';
import { leaseSafetyProblem } from './fence.js';

describe('leaseSafetyProblem', () => {
  it('lets writes go on while leases were renewed within half the lease', () => {
    expect(leaseSafetyProblem(0, 59_999, 120)).toBeNull();
    expect(leaseSafetyProblem(0, 60_000, 120)).toBeNull();
  });

  it('holds writes once renewals have failed for more than half the lease, saying why', () => {
    expect(leaseSafetyProblem(0, 60_001, 120)).toMatch(/no lease renewal for 60 s .*copy.lease_seconds 120/);
    expect(leaseSafetyProblem(1_000, 20_000, 30)).toMatch(/no lease renewal for 19 s/);
  });
});
