import pLimit, { type LimitFunction } from 'p-limit';
import type { Config } from '../config/schema.js';
import { RefusedError } from '../errors.js';
import type { Logger } from '../log.js';
import type { RejectedValue } from '../rows/convert.js';
import { shardKeyPosition } from '../rows/ddl.js';
import type { Row, TableSpec } from '../rows/types.js';
import type { SourceReader } from '../source/reader.js';
import type { Chunk } from '../store/leases.js';
import type { ShardWriter } from '../target/writer.js';
import { withRetry, type RetryPolicy } from '../mysql/retry.js';
import type { Throttle } from './throttle.js';

export type CopyMethod = 'load' | 'insert';

/** What one chunk wrote: rows per physical server, values rejected, and which path it took. */
export interface ChunkOutcome {
  rows: number;
  servers: Record<string, number>;
  rejected: RejectedValue[];
  method: CopyMethod;
}

export interface ChunkCopierDeps {
  config: Config;
  reader: SourceReader;
  writer: ShardWriter;
  throttle: Throttle;
  logger: Logger;
  method: CopyMethod;
  /** Runs before each write to a server (e.g. a shape check deferred because it was down). */
  beforeWrite?: (server: string) => Promise<void>;
}

/**
 * Copies one chunk (a primary-key range of one table) into the shards. Writes go out per shard,
 * at most `max_connections` at a time per physical server, shared by every worker of this
 * process (the bounded queue: a worker takes its next chunk only when this one is written).
 * A write that fails for a transient reason is retried with backoff while the other servers'
 * writes go on. Everything is keyed by primary key, so redoing a chunk is harmless.
 */
export class ChunkCopier {
  private readonly limits = new Map<string, LimitFunction>();
  private readonly retry: RetryPolicy;

  constructor(private readonly deps: ChunkCopierDeps) {
    this.retry = { retries: deps.config.copy.retries, baseMs: deps.config.copy.retry_base_ms };
    for (const [name, server] of Object.entries(deps.config.servers)) this.limits.set(name, pLimit(server.max_connections));
  }

  async copy(spec: TableSpec, chunk: Chunk): Promise<ChunkOutcome> {
    const { reader, writer } = this.deps;
    if (this.deps.method === 'load' && reader.readTsv) {
      const tsv = await withRetry(`read ${spec.name} chunk ${chunk.chunkNo}`, this.retry, this.deps.logger, () =>
        reader.readTsv!(spec, chunk.lowerKey, chunk.upperKey, writer.map),
      );
      if (tsv) {
        await this.deps.throttle.take(tsv.rows);
        const servers = await this.writeEach([...tsv.byShard], (shard, blocks) => writer.loadBlocks(shard, spec, blocks, tsv.rowsByShard.get(shard)!), spec, chunk);
        return { rows: tsv.rows, servers, rejected: [], method: 'load' };
      }
      this.deps.logger.info({ table: spec.name, chunk: chunk.chunkNo }, 'chunk has values that need the row path');
    }
    return this.copyRows(spec, chunk);
  }

  /** The row path: converted rows, upserted per shard (also how rejected values are found). */
  private async copyRows(spec: TableSpec, chunk: Chunk): Promise<ChunkOutcome> {
    const { reader, writer, config } = this.deps;
    const record = config.rows.on_unrepresentable === 'record';
    const keyAt = shardKeyPosition(spec);
    const outcome: ChunkOutcome = { rows: 0, servers: {}, rejected: [], method: 'insert' };
    const batches = reader.readRange(spec, chunk.lowerKey, chunk.upperKey, config.copy.batch_rows, record ? { onRejected: (r) => outcome.rejected.push(r) } : {});
    for await (const batch of batches) {
      await this.deps.throttle.take(batch.length);
      const byShard = new Map<number, Row[]>();
      for (const row of batch) {
        const shard = writer.map.shardOf(row[keyAt] as string);
        let rows = byShard.get(shard);
        if (!rows) byShard.set(shard, (rows = []));
        rows.push(row);
      }
      const servers = await this.writeEach([...byShard], async (shard, rows) => (await writer.upsertRows(shard, spec, rows), rows.length), spec, chunk);
      for (const [name, n] of Object.entries(servers)) outcome.servers[name] = (outcome.servers[name] ?? 0) + n;
      outcome.rows += batch.length;
    }
    return outcome;
  }

  /**
   * Runs one write per shard, limited per server, each retried on transient failures. Waits for
   * all of them, so a down server does not stop the others' writes; then throws the first error.
   */
  private async writeEach<T extends unknown[]>(
    parts: [number, T][],
    write: (shard: number, items: T) => Promise<number>,
    spec: TableSpec,
    chunk: Chunk,
  ): Promise<Record<string, number>> {
    const servers: Record<string, number> = {};
    const results = await Promise.allSettled(
      parts.map(([shard, items]) => {
        const server = this.deps.writer.map.serverOf(shard).name;
        const what = `shard ${shard} on server ${server}`;
        return this.limits.get(server)!(() =>
          withRetry(`write ${spec.name} chunk ${chunk.chunkNo} to ${what}`, this.retry, this.deps.logger, async () => {
            await this.deps.beforeWrite?.(server);
            const n = await write(shard, items);
            servers[server] = (servers[server] ?? 0) + n;
          }).catch((e: Error) => {
            if (e instanceof RefusedError) throw e;
            throw Object.assign(new Error(`${what}: ${e.message}`), { code: (e as { code?: string }).code, server });
          }),
        );
      }),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    return servers;
  }
}
