import { describe, expect, it } from 'vitest';
import type { TableSpec } from '../rows/types.js';
import type { TsvChunk } from '../source/reader.js';
import { LoadBatcher, type ShardLines } from './batcher.js';

const spec = { name: 'member', target: 'member' } as TableSpec;
/** Shards 0-7 on server a, 8-15 on b. */
const serverOf = (shard: number) => (shard < 8 ? 'a' : 'b');

/** A chunk with `rows` lines of `lineBytes` bytes for each shard given. */
function chunkOf(shards: number[], rows: number, lineBytes = 100): TsvChunk {
  const tsv: TsvChunk = { rows: 0, byShard: new Map(), rowsByShard: new Map() };
  for (const shard of shards) {
    tsv.byShard.set(shard, [Buffer.alloc(rows * lineBytes, shard)]);
    tsv.rowsByShard.set(shard, rows);
    tsv.rows += rows;
  }
  return tsv;
}

interface Write {
  server: string;
  parts: ShardLines[];
  done: () => void;
  fail: (e: Error) => void;
}

/** The batcher's writes, held until the test ends each one: what was written, when, together with what. */
function recordingBatcher(options: { flushBytes: number; budgetBytes: number; groupBytes?: number; maxWaitMs?: number }) {
  const writes: Write[] = [];
  const batcher = new LoadBatcher({
    ...options,
    groupBytes: options.groupBytes ?? 1 << 30,
    maxWaitMs: options.maxWaitMs ?? 60_000,
    serverOf,
    write: (server, parts) => new Promise<void>((resolve, reject) => writes.push({ server, parts, done: resolve, fail: reject })),
  });
  return { batcher, writes };
}

const settledState = async (p: Promise<unknown>) => Promise.race([p.then(() => 'written', () => 'failed'), new Promise((r) => setTimeout(() => r('pending'), 10))]);
const rowsOf = (w: Write) => w.parts.map((p) => `${p.shard}:${p.rows}`).join(' ');

describe('LoadBatcher', () => {
  it('gathers a shard\'s lines across chunks until they reach flushBytes, and a chunk is written only when all its shards are', async () => {
    const { batcher, writes } = recordingBatcher({ flushBytes: 10_000, budgetBytes: 1 << 20 });
    const first = await batcher.add(spec, chunkOf([1, 9], 60)); // 6,000 bytes each
    expect(writes).toHaveLength(0);
    const second = await batcher.add(spec, chunkOf([1], 50)); // shard 1 reaches 11,000 bytes
    expect(writes.map(rowsOf)).toEqual(['1:110']);
    expect(writes[0]!.parts[0]!.blocks.reduce((n, b) => n + b.length, 0)).toBe(11_000);
    writes[0]!.done();
    expect(await settledState(second.written)).toBe('written');
    expect(await settledState(first.written)).toBe('pending'); // its shard 9 lines are still buffered
    await Promise.all([batcher.flushAll(), Promise.resolve().then(() => writes[1]!.done())]);
    expect(writes.map(rowsOf)).toEqual(['1:110', '9:60']);
    expect(await first.written).toEqual({ a: 60, b: 60 });
    expect(await second.written).toEqual({ a: 50 });
  });

  it('keeps buffered and in-flight bytes within the budget: writes the largest buffers, grouped per server, and makes add wait', async () => {
    const { batcher, writes } = recordingBatcher({ flushBytes: 1 << 20, budgetBytes: 20_000, groupBytes: 5_000 });
    await batcher.add(spec, chunkOf([0, 1, 2, 8], 20)); // 8,000 bytes
    expect(writes).toHaveLength(0);
    await batcher.add(spec, chunkOf([0, 1, 9], 10)); // shard 0 and 1 at 3,000; 2, 8 at 2,000; 9 at 1,000
    expect(writes).toHaveLength(0);
    let added = false;
    const third = batcher.add(spec, chunkOf([3, 10], 60)).then((r) => ((added = true), r)); // 23,000 bytes held: over
    await new Promise((r) => setTimeout(r, 10));
    // Largest first until at most 15,000 stay buffered: 3 and 10 (6,000 each) leave 11,000; in groups of up to 5,000 bytes per server.
    expect(writes.map((w) => `${w.server} ${rowsOf(w)}`)).toEqual(['a 3:60', 'b 10:60']);
    expect(batcher.heldBytes).toBe(23_000);
    expect(added).toBe(false); // still over budget until a write ends
    writes[0]!.done();
    await third;
    expect(added).toBe(true);
    expect(batcher.heldBytes).toBe(17_000);
    const flushed = batcher.flushAll();
    await new Promise((r) => setTimeout(r, 10));
    expect(writes.slice(2).map((w) => `${w.server} ${rowsOf(w)}`)).toEqual(['a 0:30', 'a 1:30 2:20', 'b 8:20 9:10']);
    for (const w of writes.slice(1)) w.done();
    await flushed;
    expect(batcher.heldBytes).toBe(0);
  });

  it('fails every chunk with lines in a failed write, and only those', async () => {
    const { batcher, writes } = recordingBatcher({ flushBytes: 1 << 20, budgetBytes: 1 << 20 });
    const onA = await batcher.add(spec, chunkOf([1, 2], 10));
    const onBoth = await batcher.add(spec, chunkOf([2, 9], 10));
    const onB = await batcher.add(spec, chunkOf([9], 10));
    const flushed = batcher.flushAll();
    await new Promise((r) => setTimeout(r, 10));
    expect(writes.map((w) => `${w.server} ${rowsOf(w)}`)).toEqual(['a 1:10 2:20', 'b 9:20']);
    writes[0]!.done();
    writes[1]!.fail(new Error('server b is down'));
    await flushed;
    expect(await onA.written).toEqual({ a: 20 });
    await expect(onBoth.written).rejects.toThrow('server b is down');
    await expect(onB.written).rejects.toThrow('server b is down');
  });

  it('writes lines that waited maxWaitMs, shard by shard, so a slow source still sees its chunks written', async () => {
    const { batcher, writes } = recordingBatcher({ flushBytes: 1 << 20, budgetBytes: 1 << 20, maxWaitMs: 200 });
    const chunk = await batcher.add(spec, chunkOf([1, 2, 9], 10));
    await new Promise((r) => setTimeout(r, 100));
    expect(writes).toHaveLength(0);
    await new Promise((r) => setTimeout(r, 250));
    expect(writes.map((w) => `${w.server} ${rowsOf(w)}`)).toEqual(['a 1:10', 'a 2:10', 'b 9:10']);
    for (const w of writes) w.done();
    expect(await chunk.written).toEqual({ a: 20, b: 10 });
  });

  it('lets lines wait 4 x maxWaitMs while the buffers hold half the budget: the budget writes them in bigger statements', async () => {
    const { batcher, writes } = recordingBatcher({ flushBytes: 1 << 20, budgetBytes: 4000, maxWaitMs: 100 });
    await batcher.add(spec, chunkOf([1, 9], 10)); // 2,000 bytes: half the budget
    await new Promise((r) => setTimeout(r, 250));
    expect(writes).toHaveLength(0);
    await new Promise((r) => setTimeout(r, 600));
    expect(writes.map((w) => `${w.server} ${rowsOf(w)}`)).toEqual(['a 1:10', 'b 9:10']);
  });

  it('settles a chunk with no lines at once', async () => {
    const { batcher } = recordingBatcher({ flushBytes: 1, budgetBytes: 1 });
    expect(await (await batcher.add(spec, chunkOf([], 0))).written).toEqual({});
  });

  it('a chunk whose write failed is drained only once its lines for the other servers are written too', async () => {
    const { batcher, writes } = recordingBatcher({ flushBytes: 1_000, budgetBytes: 1 << 20 });
    const chunk = await batcher.add(spec, chunkOf([1, 9], 20)); // 2,000 bytes each: both written at once, a and b
    expect(writes.map((w) => w.server).sort()).toEqual(['a', 'b']);
    writes.find((w) => w.server === 'a')!.fail(new Error('server a is down'));
    expect(await settledState(chunk.written)).toBe('failed');
    // Its rows for b are still being written: the chunk must not be given back yet.
    expect(await settledState(chunk.drained)).toBe('pending');
    writes.find((w) => w.server === 'b')!.done();
    expect(await settledState(chunk.drained)).toBe('written');
  });
});
