import pLimit, { type LimitFunction } from 'p-limit';
import type { Config } from '../config/schema.js';
import { RefusedError } from '../errors.js';
import type { Logger } from '../log.js';
import { keyText, nullShardKeyRejection, type RejectedValue } from '../rows/convert.js';
import { shardKeyPosition } from '../rows/ddl.js';
import type { Row, TableSpec } from '../rows/types.js';
import { UnrepresentableError, type SourceReader, type TsvChunk } from '../source/reader.js';
import type { Chunk } from '../store/leases.js';
import type { ShardWriter } from '../target/writer.js';
import { withRetry, type RetryPolicy } from '../mysql/retry.js';
import { describeShards } from '../ranges.js';
import type { Throttle } from './throttle.js';
import { LoadBatcher, type ServerRows } from './batcher.js';

/** A shard's batched lines are written once they reach this size (~5,000 rows of 200 bytes). */
const LOAD_FLUSH_BYTES = 1024 * 1024;
/** Shards written together (the memory budget reached) go in transactions of up to this many bytes. */
const LOAD_GROUP_BYTES = 4 * 1024 * 1024;
/** Lines wait at most this long for more of their shard's (a throttled copy still finishes chunks steadily). */
const LOAD_MAX_WAIT_MS = 2000;

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

/** A chunk read and handed to the writers; `written` settles when its rows are committed. */
export interface ChunkHandoff {
  written: Promise<ChunkOutcome>;
  /** Settles when no line of the chunk is left to write, also after `written` failed. */
  drained: Promise<void>;
}

/**
 * Copies chunks (primary-key ranges of one table) into the shards. Writes go out per shard, at
 * most `max_connections` at a time per physical server, shared by every worker of this process.
 * On the LOAD DATA path a chunk's lines join per-shard batches (src/copy/batcher.ts) that are
 * written when big enough or when the memory budget is reached, so `copy` resolves once the
 * chunk is read and buffered and its `written` later; on the row path both are the same moment.
 * A write that fails for a transient reason is retried with backoff while the other servers'
 * writes go on. Everything is keyed by primary key, so redoing a chunk is harmless.
 */
export class ChunkCopier {
  private readonly limits = new Map<string, LimitFunction>();
  private readonly retry: RetryPolicy;
  private readonly batcher: LoadBatcher;
  /** A chunk's lines go to the batcher in parts of this many bytes (a quarter of copy.buffer_mb, 1..16 MB). */
  private readonly partBytes: number;

  constructor(private readonly deps: ChunkCopierDeps) {
    this.retry = { retries: deps.config.copy.retries, baseMs: deps.config.copy.retry_base_ms };
    this.partBytes = Math.min(16 * 1024 * 1024, Math.max(1024 * 1024, (deps.config.copy.buffer_mb * 1024 * 1024) / 4));
    for (const [name, server] of Object.entries(deps.config.servers)) this.limits.set(name, pLimit(server.max_connections));
    this.batcher = new LoadBatcher({
      flushBytes: LOAD_FLUSH_BYTES,
      groupBytes: LOAD_GROUP_BYTES,
      maxWaitMs: LOAD_MAX_WAIT_MS,
      budgetBytes: deps.config.copy.buffer_mb * 1024 * 1024,
      serverOf: (shard) => deps.writer.map.serverOf(shard).name,
      write: (server, parts) => {
        return this.writeTo(server, describeShards(parts.map((p) => p.shard)), `load ${parts.reduce((n, p) => n + p.rows, 0)} rows into`, () => deps.writer.loadShards(parts));
      },
    });
  }

  async copy(spec: TableSpec, chunk: Chunk): Promise<ChunkHandoff> {
    const { reader, writer } = this.deps;
    if (this.deps.method === 'load' && reader.readTsv) {
      // Parts of the chunk go to the batcher while it is read (the read waits on its budget): a chunk
      // of wide rows is never held whole. A read that fails and is retried hands its parts over
      // again; every part is waited for, the rows and servers are counted from the last attempt.
      const parts: { attempt: number; rows: number; written: Promise<ServerRows>; drained: Promise<void> }[] = [];
      let attempt = 0;
      const hand = async (part: TsvChunk, at: number) => {
        await this.deps.throttle.take(part.rows);
        parts.push({ attempt: at, rows: part.rows, ...(await this.batcher.add(spec, part)) });
      };
      const drained = () => Promise.all(parts.map((p) => p.drained)).then(() => {});
      let tsv: TsvChunk | null;
      try {
        tsv = await withRetry(`read ${spec.name} chunk ${chunk.chunkNo}`, this.retry, this.deps.logger, () => {
          const at = ++attempt;
          return reader.readTsv!(spec, chunk.lowerKey, chunk.upperKey, writer.map, { partBytes: this.partBytes, onPart: (part) => hand(part, at) });
        });
      } catch (e) {
        // The chunk is given back only once no line of it is left to write (see LoadBatcher's partEnded).
        await drained();
        throw e;
      }
      if (tsv) {
        await hand(tsv, attempt);
        const written = Promise.all(parts.map((p) => p.written)).then((servers) => {
          const total: ServerRows = {};
          let rows = 0;
          parts.forEach((p, i) => {
            if (p.attempt !== attempt) return;
            rows += p.rows;
            for (const [server, n] of Object.entries(servers[i]!)) total[server] = (total[server] ?? 0) + n;
          });
          return { rows, servers: total, rejected: [], method: 'load' as const };
        });
        return { written, drained: drained() };
      }
      // Lines already handed over land first (idempotently); the row path then writes the whole chunk.
      await drained();
      this.deps.logger.info({ table: spec.name, chunk: chunk.chunkNo }, 'chunk has values that need the row path');
    }
    const outcome = await this.copyRows(spec, chunk);
    return { written: Promise.resolve(outcome), drained: Promise.resolve() };
  }

  /** Writes every batched line still buffered; the chunks waiting on them settle. */
  flush(): Promise<void> {
    return this.batcher.flushAll();
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
      let kept = 0;
      for (const row of batch) {
        const key = row[keyAt];
        if (key === null || key === undefined) {
          // No shard routes a NULL (nor could the shim find the row): a value the target cannot hold, by the same policy.
          const rejected = nullShardKeyRejection(spec, keyText(spec, row));
          if (!record) throw new UnrepresentableError(rejected);
          outcome.rejected.push(rejected);
          continue;
        }
        kept++;
        const shard = writer.map.shardOf(key as string);
        let rows = byShard.get(shard);
        if (!rows) byShard.set(shard, (rows = []));
        rows.push(row);
      }
      // Every shard's write is waited for, so a down server does not stop the others'; then the first error is thrown.
      const results = await Promise.allSettled(
        [...byShard].map(async ([shard, rows]) => {
          const server = await this.writeShard(shard, `write ${spec.name} chunk ${chunk.chunkNo} to`, () => writer.upsertRows(shard, spec, rows));
          outcome.servers[server] = (outcome.servers[server] ?? 0) + rows.length;
        }),
      );
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      outcome.rows += kept;
    }
    return outcome;
  }

  /** One write to one shard, limited per server and retried on transient failures; resolves to the server's name. */
  private writeShard(shard: number, what: string, write: () => Promise<unknown>): Promise<string> {
    const server = this.deps.writer.map.serverOf(shard).name;
    return this.writeTo(server, `shard ${shard}`, what, write).then(() => server);
  }

  /** A write to shards of one server, limited per server and retried; a failure names the shards and the server. */
  private writeTo(server: string, shards: string, what: string, write: () => Promise<unknown>): Promise<void> {
    const where = `${shards} on server ${server}`;
    return this.limits.get(server)!(() =>
      withRetry(`${what} ${where}`, this.retry, this.deps.logger, async () => {
        await this.deps.beforeWrite?.(server);
        await write();
      }).catch((e: Error) => {
        if (e instanceof RefusedError) throw e;
        const code = (e as { code?: string }).code;
        throw Object.assign(new Error(`${where}: ${e.message}`), { code, server });
      }),
    );
  }
}
