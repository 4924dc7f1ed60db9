import { existsSync } from 'node:fs';
import { z } from 'zod';

/**
 * The config file's shape (design.md, "Contracts / Config"). Every object is strict:
 * unknown keys are errors. Cross-field rules (placement coverage, known servers) are
 * checked in validate.ts, where they can point at the exact YAML node.
 */

const MYSQL_SCHEMES = ['mysql:', 'mariadb:'];
const MSSQL_SCHEMES = ['mssql:', 'sqlserver:'];

/** A connection URL's problems, in words that never repeat its user or password. */
function urlProblem(s: string, schemes: string[], example: string, needsDatabase = false): string | null {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    return unreadableUrlProblem(s) ?? `expected a URL like ${example}`;
  }
  if (!schemes.includes(u.protocol) || u.hostname.length === 0) return `expected a URL like ${example}`;
  if (u.hash) return 'the URL has a fragment (#...), which is not read: percent-encode a password holding #';
  if (u.search) {
    const problem = MSSQL_SCHEMES.includes(u.protocol) ? mssqlQueryProblem(u.searchParams) : 'the URL has a query (?...), which is not read: put TLS settings under tls:, and percent-encode a password holding ?';
    if (problem) return problem;
  }
  for (const [part, text] of [['user', u.username], ['password', u.password], ['database', u.pathname]] as const) {
    try {
      decodeURIComponent(text);
    } catch {
      return `the URL's ${part} is not percent-encoded (write %25 for %), or give it as \${file:PATH} or \${ENV}, which are encoded for you`;
    }
  }
  if (needsDatabase && u.pathname.replace(/^\//, '') === '') return `the URL must name a database, like ${example}`;
  return null;
}

/**
 * Why a URL that names a scheme could not be read, for two usual slips; null for others. Nothing of
 * the URL is repeated: with a stray #, ? or / in the password, any part of it may be the password.
 */
function unreadableUrlProblem(s: string): string | null {
  const scheme = s.indexOf('://');
  if (scheme < 0) return null;
  const rest = s.slice(scheme + 3);
  const authorityEnd = rest.search(/[/?#]/);
  // An @ after the first /, ? or #: that character stands in the user:password part, where it ends the host early.
  if (authorityEnd >= 0 && rest.indexOf('@', authorityEnd) > authorityEnd) {
    return "the URL's user or password holds a #, ? or / that is not percent-encoded (write %23, %3F, %2F), or give the password as ${file:PATH} or ${ENV}, which are encoded for you";
  }
  const authority = authorityEnd >= 0 ? rest.slice(0, authorityEnd) : rest;
  const port = /:(\d+)$/.exec(authority.slice(authority.lastIndexOf('@') + 1))?.[1];
  if (port !== undefined && Number(port) > 65535) return "the URL's port is out of range (at most 65535)";
  return null;
}

/** The query parameters an mssql:// URL takes (docs/mssql.md; read by src/source/mssql/connect.ts). */
const MSSQL_QUERY: Record<string, (value: string) => boolean> = {
  encrypt: (v) => ['true', 'false', 'strict'].includes(v),
  instance: (v) => v.length > 0,
  app: (v) => v.length > 0,
};

/** Names and values are not repeated: with a password holding an unencoded ?, they are part of it. */
function mssqlQueryProblem(params: URLSearchParams): string | null {
  for (const [name, value] of params) {
    const valid = MSSQL_QUERY[name];
    if (!valid) return `the URL has a query parameter an mssql:// URL does not take (it takes ${Object.keys(MSSQL_QUERY).join(', ')}; percent-encode a password holding ?)`;
    if (!valid(value)) return name === 'encrypt' ? "the URL's encrypt= should be true, false or strict" : `the URL's ${name}= is empty`;
  }
  return null;
}

function urlSchema(schemes: string[], example: string, needsDatabase = false) {
  return z.string().superRefine((s, ctx) => {
    const problem = urlProblem(s, schemes, example, needsDatabase);
    if (problem) ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
  });
}

const mysqlUrl = urlSchema(MYSQL_SCHEMES, 'mysql://user@host:3306/database');
const controlUrl = urlSchema(MYSQL_SCHEMES, 'mysql://user@host:3306/membermig_control', true);
/** Kafka Connect's REST URL; user and password in it are sent as basic auth. */
const connectUrl = urlSchema(['http:', 'https:'], 'http://connect-host:8083');
const sourceUrl = urlSchema([...MYSQL_SCHEMES, ...MSSQL_SCHEMES], 'mssql://user@host:1433/Database or mysql://user@host:3306/database');

/** The URL schemes a source kind takes. */
export function sourceSchemes(kind: 'mssql' | 'mysql'): string[] {
  return kind === 'mssql' ? MSSQL_SCHEMES : MYSQL_SCHEMES;
}

/** A file that must be there when the config is loaded (read again at connect time). */
const existingFile = z.string().refine((path) => existsSync(path), { message: 'no such file' });

/** TLS options for a MySQL or SQL Server connection; file paths are read at connect time. */
const tls = z
  .object({
    ca: existingFile.optional().describe('path of a CA certificate file'),
    cert: existingFile.optional(),
    key: existingFile.optional(),
    reject_unauthorized: z.boolean().default(true),
  })
  .strict();

const identifier = z.string().min(1).max(64);

const positiveInt = z.number().int().positive();

/**
 * "auto" or a positive integer, one message for any other value. A failed zod union says only
 * "Invalid input", so each union in this file gives its own message.
 */
const AUTO_OR_POSITIVE = 'expected a positive integer or "auto"';
const autoOrPositiveInt = z.union([z.literal('auto'), z.number().int().positive({ error: AUTO_OR_POSITIVE })], { error: AUTO_OR_POSITIVE });

export const shardFunctions = ['mod', 'crc32', 'murmur3'] as const;

const SHARD_RANGE = 'expected a range like "0-511" or a single shard number';
const placementEntry = z
  .object({
    shards: z.union([z.string().regex(/^\s*\d+\s*(-\s*\d+\s*)?$/, SHARD_RANGE), z.number().int().nonnegative({ error: SHARD_RANGE })], { error: SHARD_RANGE }),
    server: identifier,
  })
  .strict();

const tableSchema = z
  .object({
    source: z.string().regex(/^[^.]+\.[^.]+$/, 'expected schema.table (e.g. dbo.Member) or database.table'),
    target: identifier,
    shard_key: identifier,
    /** Columns to leave out of the copy (e.g. computed or audit-only columns). */
    exclude_columns: z.array(identifier).default([]),
    /** Name of a column holding the row's last change time, for `verify --since`. */
    updated_at: identifier.optional(),
    /**
     * Column overrides by source column name: `target` renames it in the shard tables. Types are
     * not overridden: the type map (src/rows) picks the target type that holds every value exactly.
     */
    columns: z.record(identifier, z.object({ target: identifier.refine((name) => name.trim() === name, { message: 'a MySQL column name cannot begin or end with a space' }) }).strict()).optional(),
  })
  .strict();

export const configSchema = z
  .object({
    control: z.object({ url: controlUrl, tls: tls.optional() }).strict(),
    source: z
      .object({
        kind: z.enum(['mssql', 'mysql']),
        url: sourceUrl,
        tls: tls.optional(),
        /** SQL Server: trust a self-signed server certificate (test servers only). */
        trust_server_certificate: z.boolean().default(false),
      })
      .strict(),
    servers: z.record(
      identifier,
      z
        .object({
          primary: mysqlUrl,
          replicas: z.array(mysqlUrl).default([]),
          dc: z.string().min(1).optional(),
          tls: tls.optional(),
          /** Connections to this server used by one membermig process. */
          max_connections: positiveInt.default(4),
        })
        .strict(),
    ),
    shards: z
      .object({
        // Each shard is a database on its server: a million of them passed here and then failed in init
        // (one catalog query over every shard database exceeded max_allowed_packet).
        count: z.number().int().min(1).max(65_536, 'at most 65536 shards (each one is a database on its server)'),
        function: z.enum(shardFunctions),
        database: z.string().min(1).regex(/\{shard(:0?\d+)?\}/, 'the database pattern must contain {shard} or {shard:04}'),
        placement: z.array(placementEntry).min(1),
      })
      .strict(),
    tables: z.record(identifier, tableSchema),
    rows: z
      .object({
        /** What to do with a value the target cannot hold exactly: stop, or record it and go on. */
        on_unrepresentable: z.enum(['fail', 'record']).default('fail'),
      })
      .strict()
      .default({ on_unrepresentable: 'fail' }),
    copy: z
      .object({
        chunk_rows: positiveInt.default(50_000),
        batch_rows: positiveInt.default(5_000),
        /** Chunk workers per process; auto: 4, and 2 above 256 shards (src/copy/workers.ts). */
        workers: autoOrPositiveInt.default('auto'),
        /** Memory for LOAD DATA lines batched per shard across chunks (src/copy/batcher.ts), in MB. */
        buffer_mb: positiveInt.default(32),
        max_rows_per_sec: positiveInt.optional(),
        lease_seconds: positiveInt.default(120),
        /** auto: LOAD DATA lines built by a MySQL source (else upserts); load; insert (multi-row upserts). */
        method: z.enum(['auto', 'load', 'insert']).default('auto'),
        /** Attempts of a write or read that failed for a transient reason (server down, lost connection). */
        retries: z.number().int().nonnegative().default(5),
        /** First backoff between attempts; doubles each time, up to 30 s. */
        retry_base_ms: positiveInt.default(500),
        /** Writes to a server wait while one of its replicas is further behind than this (src/target/replica-lag.ts). */
        max_replica_lag_seconds: z.number().positive().default(10),
      })
      .strict()
      .default({ chunk_rows: 50_000, batch_rows: 5_000, workers: 'auto', buffer_mb: 32, lease_seconds: 120, method: 'auto', retries: 5, retry_base_ms: 500, max_replica_lag_seconds: 10 }),
    verify: z
      .object({
        /** auto: verifyChunkRows (src/verify/plan.ts), from the shard count. */
        chunk_rows: autoOrPositiveInt.default('auto'),
        workers: positiveInt.default(2),
        recheck_after_seconds: z.number().nonnegative().default(5),
        /** Row hash: auto = crc32 between MySQL servers, md5 with a SQL Server legacy side (see src/rows/canonical.ts). */
        hash: z.enum(['auto', 'crc32', 'md5']).default('auto'),
        /**
         * A check's statement on a MySQL server (a shard server, a MySQL legacy side) that has not
         * answered in this long fails, and ends the pass: a hung server would hold every chunk.
         */
        statement_timeout_seconds: z.number().positive().default(120),
      })
      .strict()
      .default({ chunk_rows: 'auto', workers: 2, recheck_after_seconds: 5, hash: 'auto', statement_timeout_seconds: 120 }),
    cdc: z
      .object({
        kafka: z
          .object({
            brokers: z.array(z.string().regex(/^[^:\s]+:\d+$/, 'expected host:port')).min(1),
            topic: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)], { error: 'expected a topic name or a list of topic names' }),
            group: z.string().min(1),
            client_id: z.string().min(1).default('membermig'),
            /** Most events decoded and applied as one batch (per partition) before its offset is committed. */
            max_batch_events: positiveInt.default(2000),
            /** Partitions one sync process consumes at the same time (their batches are applied together). */
            partitions_concurrently: positiveInt.default(16),
            /** Debezium's decimal.handling.mode, for events without schemas: precise (base64 bytes) or string. */
            decimal_handling: z.enum(['precise', 'string']).default('precise'),
            /**
             * The Connect worker's value.converter.replace.null.with.default (Kafka's default true): then a
             * NULL arrives as the column's default, and a value equal to a nullable column's default is
             * copied again from legacy. Set false only with the converter set false too.
             */
            replace_null_with_default: z.boolean().default(true),
            /** A member that stops heartbeating (killed, partitioned) loses its partitions after this long. */
            session_timeout_ms: positiveInt.default(30_000),
            /** How long a rebalance waits for members to finish their in-flight batch and rejoin. */
            rebalance_timeout_ms: positiveInt.default(60_000),
            /**
             * The Kafka Connect that runs the connectors filling the topics: sync's lag is measured from
             * the topics, which a stopped connector leaves quiet, so the sync_lag gate asks Connect too.
             */
            connect: z
              .object({
                url: connectUrl,
                connectors: z.array(z.string().min(1)).min(1),
              })
              .strict()
              .optional(),
          })
          .strict()
          .optional(),
        mssql: z
          .object({
            capture_instances: z.record(identifier, z.string().min(1)).default({}),
            poll_interval_ms: positiveInt.default(1000),
          })
          .strict()
          .optional(),
      })
      .strict()
      .optional(),
    gray: z
      .object({
        gates: z
          .object({
            max_verify_age_minutes: positiveInt.default(60),
            max_sync_lag_seconds: positiveInt.default(5),
            allow_dead_letters: z.boolean().default(false),
          })
          .strict()
          .default({ max_verify_age_minutes: 60, max_sync_lag_seconds: 5, allow_dead_letters: false }),
      })
      .strict()
      .default({ gates: { max_verify_age_minutes: 60, max_sync_lag_seconds: 5, allow_dead_letters: false } }),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
export type TableConfig = z.infer<typeof tableSchema>;
export type ServerConfig = Config['servers'][string];
export type TlsConfig = z.infer<typeof tls>;
