import { describe, expect, it } from 'vitest';
import { writeFindingRefusals } from './retry.js';

const refused = (msg: string) => Object.assign(new Error(msg), { code: 'ER_DATA_TOO_LONG' });
const unreachable = () => Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });

describe('writeFindingRefusals', () => {
  it('writes the items in one go when the server takes them', async () => {
    const calls: number[][] = [];
    expect(await writeFindingRefusals([1, 2, 3], async (items) => void calls.push([...items]))).toEqual([]);
    expect(calls).toEqual([[1, 2, 3]]);
  });

  it('on a refusal, writes each item alone and returns the refused ones with their messages', async () => {
    const written: number[] = [];
    const refusals = await writeFindingRefusals([1, 2, 3, 4], async (items) => {
      const bad = items.find((i) => i % 2 === 0);
      if (bad !== undefined) throw refused(`value ${bad} too long`);
      written.push(...items);
    });
    expect(refusals.map((r) => [r.item, r.error.message])).toEqual([
      [2, 'value 2 too long'],
      [4, 'value 4 too long'],
    ]);
    expect(written).toEqual([1, 3]);
  });

  it('throws a transient failure, in one go or one by one: the server is not there, nothing was refused', async () => {
    await expect(writeFindingRefusals([1, 2], async () => Promise.reject(unreachable()))).rejects.toThrow(/ECONNREFUSED/);
    let calls = 0;
    const write = async () => Promise.reject(++calls === 1 ? refused('bad') : unreachable());
    await expect(writeFindingRefusals([1, 2], write)).rejects.toThrow(/ECONNREFUSED/);
  });
});
