import type { TableSpec } from '../rows/types.js';
import type { TsvChunk } from '../source/reader.js';
import type { ShardLoad } from '../target/writer.js';

/**
 * Gathers LOAD DATA lines per shard across chunks, so each LOAD DATA carries enough rows to be
 * worth its statement and each commit enough statements. With 16 shards a 50,000-row chunk gives
 * each shard ~3,000 rows; with 1,024 shards it gives ~50, and one LOAD DATA in a transaction of
 * its own per shard per chunk cost more than the rows (2M rows into 1,024 shards: 0.42x raw LOAD
 * DATA that way). Memory is bounded in bytes, whatever the row width or the shard count:
 *
 * - a shard's buffer is written once it holds `flushBytes`, or once its first line has waited
 *   `maxWaitMs` (a throttled or slow source still sees its chunks finish, and a kill loses little),
 *   in a transaction of its own; while the buffers hold half the budget or more, lines flood in
 *   and the budget (below) writes them soon anyway, so they may wait 4 x `maxWaitMs`;
 * - when buffered plus in-flight bytes pass `budgetBytes`, the largest buffers are written until
 *   buffered bytes are under three quarters of the budget, and `add` waits while the budget is
 *   still exceeded (the bounded queue between readers and writers). Buffers written together go
 *   to their servers in groups of up to `groupBytes`, one transaction per group.
 *
 * A chunk is written when every shard buffer that took its lines has been written: `add` returns
 * a promise of that, which the caller turns into the chunk's completion in the control store, so a
 * chunk is never marked done before its rows are committed. A failed write fails every chunk that
 * had lines in it; their rows elsewhere are kept and rewritten idempotently by the next attempt.
 */

/** One shard's lines in a group write (all rows of one table in that shard). */
export interface ShardLines extends ShardLoad {
  shard: number;
}

export interface BatcherOptions {
  /** Writes shards' lines, all on `server`, as one transaction (retried as the caller sees fit). */
  write: (server: string, parts: ShardLines[]) => Promise<void>;
  serverOf: (shard: number) => string;
  flushBytes: number;
  budgetBytes: number;
  groupBytes: number;
  maxWaitMs: number;
}

/** How many rows of one chunk went to which server. */
export type ServerRows = Record<string, number>;

interface PendingChunk {
  parts: number;
  servers: ServerRows;
  settled: boolean;
  resolve: (servers: ServerRows) => void;
  reject: (e: unknown) => void;
  /** Parts not yet written or failed; at 0 `drained` resolves. */
  open: number;
  drained: () => void;
}

interface ShardBuffer extends ShardLines {
  key: string;
  bytes: number;
  /** When its first line came (Date.now()). */
  since: number;
  /** Rows per chunk in this buffer. */
  chunks: Map<PendingChunk, number>;
}

export class LoadBatcher {
  private readonly buffers = new Map<string, ShardBuffer>();
  private buffered = 0;
  private writing = 0;
  private inFlight = 0;
  /** Callers waiting for any write to end (not Promise.race over the writes: it leaks a handler per write per call). */
  private waiters: (() => void)[] = [];
  /** Runs while lines are buffered: writes those that waited maxWaitMs. */
  private ageTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: BatcherOptions) {}

  /** Bytes held: buffered and being written. */
  get heldBytes(): number {
    return this.buffered + this.writing;
  }

  /**
   * Takes a chunk's lines. Resolves once they are buffered within the memory budget, with a
   * promise (wrapped, so it is not awaited here) that settles when they are all written.
   */
  async add(spec: TableSpec, tsv: TsvChunk): Promise<{ written: Promise<ServerRows>; drained: Promise<void> }> {
    const chunk: PendingChunk = { parts: tsv.byShard.size, servers: {}, settled: false, resolve: () => {}, reject: () => {}, open: tsv.byShard.size, drained: () => {} };
    const written = new Promise<ServerRows>((resolve, reject) => Object.assign(chunk, { resolve, reject }));
    const drained = new Promise<void>((resolve) => (chunk.drained = resolve));
    // A write may fail before the caller has its handler on `written`: that is not unhandled.
    written.catch(() => {});
    if (chunk.parts === 0) {
      chunk.resolve({});
      chunk.drained();
    }
    for (const [shard, blocks] of tsv.byShard) {
      const buffer = this.bufferOf(spec, shard);
      const rows = tsv.rowsByShard.get(shard)!;
      let bytes = 0;
      for (const block of blocks) {
        buffer.blocks.push(block);
        bytes += block.length;
      }
      buffer.rows += rows;
      buffer.bytes += bytes;
      buffer.chunks.set(chunk, rows);
      this.buffered += bytes;
      if (buffer.bytes >= this.options.flushBytes) this.flush([buffer]);
    }
    await this.keepWithinBudget();
    return { written, drained };
  }

  /** Writes every buffer and waits for all writes (the end of a run). */
  async flushAll(): Promise<void> {
    this.flush([...this.buffers.values()]);
    while (this.inFlight > 0) await this.aWriteEnds();
  }

  private bufferOf(spec: TableSpec, shard: number): ShardBuffer {
    const key = `${spec.name}\u0000${shard}`;
    let buffer = this.buffers.get(key);
    if (!buffer) this.buffers.set(key, (buffer = { key, spec, shard, blocks: [], rows: 0, bytes: 0, since: Date.now(), chunks: new Map() }));
    if (!this.ageTimer) {
      this.ageTimer = setInterval(() => this.flushOld(), Math.max(10, this.options.maxWaitMs / 4));
      this.ageTimer.unref();
    }
    return buffer;
  }

  /**
   * Lines that waited their longest go out shard by shard, not grouped: buffers fill this slowly
   * only when little is copied, where a group saves nothing, and a failing shard then costs its
   * own retries only (a group's retries are shared by all its shards, and each failure of any of
   * them lengthens the backoff of all).
   * While lines flood in (buffers at half the budget or more) the budget writes them within
   * seconds, in bigger statements grouped per server; an age flush at maxWaitMs would cut them
   * short. With 1,024 shards a shard's lines reach only ~30 KB in 2 s: 2M rows took ~6,400 LOAD
   * DATA and ~3,600 transactions per server that way, ~3,900 and ~80 with the budget writing
   * them (the shard servers' Com_load and Com_begin over a 2M-row copy).
   */
  private flushOld(): void {
    const flooding = this.buffered >= this.options.budgetBytes / 2;
    const before = Date.now() - this.options.maxWaitMs * (flooding ? 4 : 1);
    this.flush(
      [...this.buffers.values()].filter((b) => b.since <= before),
      0,
    );
  }

  private async keepWithinBudget(): Promise<void> {
    const { budgetBytes } = this.options;
    if (this.buffered + this.writing <= budgetBytes) return;
    const target = (budgetBytes * 3) / 4;
    if (this.buffered > target) {
      const chosen: ShardBuffer[] = [];
      let left = this.buffered;
      for (const buffer of [...this.buffers.values()].sort((a, b) => b.bytes - a.bytes)) {
        if (left <= target) break;
        chosen.push(buffer);
        left -= buffer.bytes;
      }
      this.flush(chosen);
    }
    while (this.buffered + this.writing > budgetBytes && this.inFlight > 0) await this.aWriteEnds();
  }

  private aWriteEnds(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Starts writing buffers, grouped per server up to `groupBytes`; they are emptied at once and fill again meanwhile. */
  private flush(buffers: ShardBuffer[], groupBytes = this.options.groupBytes): void {
    if (buffers.length === 0) return;
    const byServer = new Map<string, ShardBuffer[]>();
    for (const buffer of buffers) {
      this.buffers.delete(buffer.key);
      const server = this.options.serverOf(buffer.shard);
      let list = byServer.get(server);
      if (!list) byServer.set(server, (list = []));
      list.push(buffer);
    }
    for (const [server, list] of byServer) {
      let group: ShardBuffer[] = [];
      let bytes = 0;
      for (const buffer of list) {
        if (group.length > 0 && bytes + buffer.bytes > groupBytes) {
          this.writeGroup(server, group, bytes);
          group = [];
          bytes = 0;
        }
        group.push(buffer);
        bytes += buffer.bytes;
      }
      if (group.length > 0) this.writeGroup(server, group, bytes);
    }
    if (this.buffers.size === 0) {
      clearInterval(this.ageTimer);
      this.ageTimer = undefined;
    }
  }

  private writeGroup(server: string, group: ShardBuffer[], bytes: number): void {
    this.buffered -= bytes;
    this.writing += bytes;
    this.inFlight++;
    const parts = group.map(({ spec, shard, blocks, rows }) => ({ spec, shard, blocks, rows }));
    void this.options
      .write(server, parts)
      .then(
        () => {
          for (const buffer of group) for (const [chunk, rows] of buffer.chunks) partWritten(chunk, server, rows);
        },
        (e: unknown) => {
          for (const buffer of group) for (const chunk of buffer.chunks.keys()) partFailed(chunk, e);
        },
      )
      .finally(() => {
        this.writing -= bytes;
        this.inFlight--;
        const waiters = this.waiters;
        this.waiters = [];
        for (const wake of waiters) wake();
      });
  }
}

function partWritten(chunk: PendingChunk, server: string, rows: number): void {
  chunk.servers[server] = (chunk.servers[server] ?? 0) + rows;
  if (--chunk.parts === 0 && !chunk.settled) {
    chunk.settled = true;
    chunk.resolve(chunk.servers);
  }
  partEnded(chunk);
}

function partFailed(chunk: PendingChunk, e: unknown): void {
  if (!chunk.settled) {
    chunk.settled = true;
    chunk.reject(e);
  }
  partEnded(chunk);
}

/**
 * A failed chunk's lines for other servers may still be buffered, and they are written all the
 * same: `drained` tells when none is left, so the chunk is given back only then (given back
 * earlier, another process could copy it anew and these older lines land over its rows).
 */
function partEnded(chunk: PendingChunk): void {
  if (--chunk.open === 0) chunk.drained();
}
