import { describe, expect, it } from 'vitest';
import type { Difference } from './drill.js';
import { planRepairs } from './repair.js';
import { keyId, noLegacyRows } from './sides.js';

describe('planRepairs', () => {
  const diff = (key: string, kind: Difference['kind']): Difference => ({ key: [key], kind, shard: 3 });

  it('copies from legacy what legacy has, deletes what it has not, holds keys where legacy is behind', () => {
    const legacy = noLegacyRows();
    legacy.rows.set(keyId(['1']), ['1', 'a']);
    legacy.rows.set(keyId(['2']), ['2', 'b']);
    const planned = planRepairs([diff('1', 'missing'), diff('2', 'wrong_shard'), diff('3', 'extra'), diff('4', 'different'), diff('1', 'different')], legacy, new Set([keyId(['1'])]));
    expect(planned.map((p) => [p.key[0], p.kind, p.action])).toEqual([
      ['1', 'missing', 'hold'],
      ['2', 'wrong_shard', 'move'],
      ['3', 'extra', 'delete'],
      ['4', 'different', 'delete'],
      ['1', 'different', 'hold'],
    ]);
  });

  it('acts on the legacy rows read for the repair, not on the difference alone: an extra key legacy now has is moved home', () => {
    const legacy = noLegacyRows();
    legacy.rows.set(keyId(['7']), ['7', 'inserted since the check']);
    expect(planRepairs([diff('7', 'extra'), diff('8', 'extra')], legacy).map((p) => [p.key[0], p.action])).toEqual([
      ['7', 'move'],
      ['8', 'delete'],
    ]);
  });

  it('never deletes the copies of a key whose legacy row exists but cannot be converted, whatever the difference said', () => {
    const legacy = noLegacyRows();
    legacy.unrepresentable.set(keyId(['5']), 'table t, key (5), column code: not valid ascii');
    const planned = planRepairs([diff('5', 'extra'), diff('5', 'wrong_shard'), diff('5', 'different'), diff('6', 'unrepresentable')], legacy);
    expect(planned.map((p) => p.action)).toEqual(['keep', 'keep', 'keep', 'keep']);
  });
});
