import { isAzureSql } from '../source/mssql/preflight.js';
import { emptyChecksum, mssqlCanonicalRow, mssqlCanonicalValue, type RangeChecksum } from '../rows/canonical.js';
import type { TableSpec } from '../rows/types.js';
import type { ChunkKey } from '../store/leases.js';
import type { ShardMap } from '../shard/map.js';
import { readPlan, type MssqlReader } from '../source/mssql/reader.js';
import { keyRange, quoteName, type SqlStatement } from '../source/mssql/tsql.js';
import { legacyRowsOf, StreamingLegacySide, type LegacyRows } from './sides.js';
import type { KeyRange, RowFilter } from './sql.js';

/**
 * The SQL Server side of a chunk checksum, pushed down as T-SQL: the md5 row hash of the
 * canonical row form (src/rows/canonical.ts) summed exactly as two 32-bit halves, so the sum
 * equals MySQL's SUM of the same 64-bit hashes. The key range is bound exactly as the reader's
 * keyset pages bind it (src/source/mssql/tsql.ts keyRange), so SQL Server's collation orders the
 * keys the same way. Undefined when a column has no exact T-SQL canonical form: that table is then
 * hashed in Node from the rows the reader converts.
 */
export function mssqlChecksumQuery(spec: TableSpec, range: KeyRange): SqlStatement | undefined {
  const values: string[] = [];
  for (const c of spec.columns) {
    const v = mssqlCanonicalValue(quoteName(c.source), c.sourceType, c.nullable);
    if (v === undefined) return undefined;
    values.push(v);
  }
  const plan = readPlan(spec);
  const { where, params } = keyRange(plan.keys, range.lower, range.upper);
  const text =
    `SELECT COUNT_BIG(*) AS n, ISNULL(SUM(CAST(SUBSTRING(h, 1, 4) AS bigint)), 0) AS hi, ISNULL(SUM(CAST(SUBSTRING(h, 5, 4) AS bigint)), 0) AS lo\n` +
    `FROM (SELECT HASHBYTES('MD5', ${mssqlCanonicalRow(values)}) AS h\nFROM ${plan.table}${where}) AS x`;
  return { text, params };
}

const PRODUCT_MAJOR_VERSION_SQL = "SELECT CAST(SERVERPROPERTY('ProductMajorVersion') AS int) AS major, CAST(SERVERPROPERTY('EngineEdition') AS int) AS engine_edition";

/** The digest from the query's result: hi·2^32 + lo, the exact sum of the 64-bit row hashes. */
export function mssqlDigest(hi: string | number | bigint, lo: string | number | bigint): bigint {
  return BigInt(hi) * 2n ** 32n + BigInt(lo);
}

/**
 * A SQL Server legacy side: chunk checksums computed by SQL Server (T-SQL above) where every
 * column has an exact T-SQL canonical form and no row filter applies; drill-down, filtered runs
 * and the other tables read rows through the reader and hash them in Node.
 */
export class MssqlLegacySide extends StreamingLegacySide {
  override readonly readsByKey = true;
  constructor(
    private readonly mssql: MssqlReader,
    spec: TableSpec,
    map: ShardMap,
  ) {
    // md5: SQL Server has HASHBYTES('MD5') but no CRC32 (see src/rows/canonical.ts).
    super(mssql, spec, 'md5', map);
  }

  private utf8Collations: Promise<boolean> | undefined;

  override async checksum(range: KeyRange, filter: RowFilter): Promise<RangeChecksum> {
    const stmt = filter.since || filter.shards ? undefined : mssqlChecksumQuery(this.spec, range);
    if (!stmt || !(await this.hasUtf8Collations())) return super.checksum(range, filter);
    const [row] = await this.mssql.query<{ n: string | number; hi: string | number; lo: string | number }>(stmt.text, stmt.params);
    if (!row) return emptyChecksum();
    return { count: Number(row.n), digest: mssqlDigest(row.hi, row.lo) };
  }

  /** Rows by key with one keyed statement per batch (the repair queue, drill-down's rows to repair). */
  override async rowsByKey(keys: ChunkKey[]): Promise<LegacyRows> {
    const { rows, rejected } = await this.mssql.rowsByKey(this.spec, keys);
    return legacyRowsOf(this.spec, rows, rejected);
  }

  /** The canonical text is UTF-8 through a _UTF8 collation: SQL Server 2019 (15.x) and later. */
  private hasUtf8Collations(): Promise<boolean> {
    this.utf8Collations ??= this.mssql
      .query<{ major: number; engine_edition: number }>(PRODUCT_MAJOR_VERSION_SQL, [])
      .then((rows) => isAzureSql(Number(rows[0]?.engine_edition)) || Number(rows[0]?.major ?? 0) >= 15);
    return this.utf8Collations;
  }
}
