import { describe, expect, it } from 'vitest';
import type { VerifyResult } from '../../verify/index.js';
import { renderVerify } from './verify.js';

describe('renderVerify', () => {
  const stopped: VerifyResult = {
    state: 'stopped',
    passes: 1,
    hash: 'crc32',
    jobId: 3,
    joined: false,
    tables: [{ table: 'member', runId: 9, state: 'running', chunksTotal: 59, chunksChecked: 4, rowsSource: 400, rowsTarget: 399, differences: 0, repaired: 0, seconds: null, scope: {} }],
    differences: [{ table: 'member', kind: 'missing', shard: 3, key: ['42'] } as VerifyResult['differences'][number]],
    plannedRepairs: [],
    repairQueue: [],
    failures: [],
  };

  it('a stopped run shows no difference count for a table it has not finished, and calls its differences found so far', () => {
    const text = renderVerify(stopped);
    expect(text).toMatch(/member\s+stopped\s+4\/59\s+400\s+399\s+-\s+0/);
    expect(text).toContain('differences found before the stop (first 1; the rest of the run decides):');
    expect(text).not.toContain('first 1 differences:');
  });

  it('says when the run joined a job an earlier process started (its seconds and failures count from then)', () => {
    expect(renderVerify({ ...stopped, joined: true })).toContain('joined verify job 3, which an earlier process started');
    expect(renderVerify(stopped)).not.toContain('joined verify job');
  });
});
