import { namedFailure, RefusedError } from '../errors.js';
import type { Config } from '../config/schema.js';
import { connectMysql, quoteId } from '../mysql/connect.js';
import { targetDdl } from '../rows/ddl.js';
import type { TableSpec } from '../rows/types.js';
import type { ShardMap } from '../shard/map.js';
import { engineProblems, readExistingTables, refuseShapeProblems, shapeProblems, uniqueKeyProblems } from './shape.js';

export interface ShardTablesResult {
  server: string;
  created: number;
  existing: number;
}

export interface ServerTables {
  /** The (database, spec) pairs whose table does not exist yet. */
  missing: { database: string; spec: TableSpec }[];
  existing: number;
  /** Shape differences of existing tables, each naming database, table and column, index or engine. */
  problems: string[];
}

export interface ShardTablesPlan {
  missing: Map<string, { database: string; spec: TableSpec }[]>;
  existing: Map<string, number>;
  /** Servers that could not be reached (only with tolerateUnreachable): not checked. */
  unreachable: string[];
}

/** Reads one shard server's tables for the specs and checks the shape of those that exist. Changes nothing. */
export async function checkServerTables(config: Pick<Config, 'servers'>, map: ShardMap, specs: TableSpec[], name: string): Promise<ServerTables> {
  const server = config.servers[name]!;
  const databases = map.shardsOn(name).map((s) => map.databaseOf(s));
  const conn = await connectMysql(server.primary, { database: undefined }, server.tls);
  try {
    const found = await readExistingTables(conn, databases, specs.map((s) => s.target));
    const result: ServerTables = { missing: [], existing: 0, problems: [] };
    for (const database of databases) {
      for (const spec of specs) {
        const key = `${database}.${spec.target}`;
        const columns = found.columns.get(key);
        if (!columns) result.missing.push({ database, spec });
        else {
          result.existing++;
          result.problems.push(...shapeProblems(name, database, spec, columns, found.primaryKeys.get(key) ?? []));
          result.problems.push(...uniqueKeyProblems(name, database, spec, found.uniqueKeys.get(key) ?? []));
          result.problems.push(...engineProblems(name, database, spec, found.engines.get(key)));
        }
      }
    }
    return result;
  } finally {
    await conn.end();
  }
}

/**
 * Reads every shard server and checks the tables that already exist; refuses (naming table and
 * column, index or engine) when one has a different shape, a unique index besides the primary key
 * or an engine other than InnoDB.
 * Changes nothing: run it before any write. With tolerateUnreachable, a server that cannot be
 * reached is listed instead of failing the check; with refuseShape false, only missing tables are found.
 */
export async function planShardTables(
  config: Pick<Config, 'servers'>,
  map: ShardMap,
  specs: TableSpec[],
  options: { tolerateUnreachable?: (error: Error) => boolean; refuseShape?: boolean } = {},
): Promise<ShardTablesPlan> {
  const plan: ShardTablesPlan = { missing: new Map(), existing: new Map(), unreachable: [] };
  const problems: string[] = [];
  await Promise.all(
    Object.keys(config.servers).map(async (name) => {
      try {
        const found = await checkServerTables(config, map, specs, name);
        plan.missing.set(name, found.missing);
        plan.existing.set(name, found.existing);
        problems.push(...found.problems);
      } catch (e) {
        if (!options.tolerateUnreachable?.(e as Error)) throw namedFailure(`shard server ${name}`, e);
        plan.unreachable.push(name);
      }
    }),
  );
  if (options.refuseShape !== false) refuseShapeProblems(problems);
  return plan;
}

/** Creates the missing shard tables of a plan (IF NOT EXISTS: a concurrent init is harmless). */
export async function createShardTables(config: Pick<Config, 'servers'>, plan: ShardTablesPlan): Promise<ShardTablesResult[]> {
  return Promise.all(
    Object.entries(config.servers).map(async ([name, server]) => {
      const todo = plan.missing.get(name) ?? [];
      if (todo.length > 0) {
        const conn = await connectMysql(server.primary, { database: undefined }, server.tls);
        try {
          for (const { database, spec } of todo) await conn.query(targetDdl(spec, database));
        } finally {
          await conn.end();
        }
      }
      return { server: name, created: todo.length, existing: plan.existing.get(name) ?? 0 };
    }),
  );
}

/**
 * Empties the shard tables of `specs` on every server (TRUNCATE; `full --restart` copies into
 * empty tables, so rows deleted on the legacy side since the earlier copy do not stay). One
 * statement at a time per server, servers in parallel.
 */
export async function emptyShardTables(config: Pick<Config, 'servers'>, map: ShardMap, specs: TableSpec[]): Promise<number> {
  const counts = await Promise.all(
    Object.entries(config.servers).map(async ([name, server]) => {
      let conn;
      try {
        conn = await connectMysql(server.primary, { database: undefined }, server.tls);
        let emptied = 0;
        for (const shard of map.shardsOn(name)) {
          for (const spec of specs) {
            await conn.query(`TRUNCATE TABLE ${quoteId(map.databaseOf(shard))}.${quoteId(spec.target)}`);
            emptied++;
          }
        }
        return emptied;
      } catch (e) {
        throw namedFailure(`emptying the shard tables on server ${name}`, e);
      } finally {
        await conn?.end();
      }
    }),
  );
  return counts.reduce((a, b) => a + b, 0);
}

/** Refuses (exit 2) a plan with shard tables missing: `membermig init` creates them. */
export function refuseMissingShardTables(plan: ShardTablesPlan): void {
  const missing = [...plan.missing.values()].flat();
  const first = missing[0];
  if (first) throw new RefusedError(`table ${first.spec.name}: shard table ${first.database}.${first.spec.target} does not exist (${missing.length} missing): run membermig init first`);
}
