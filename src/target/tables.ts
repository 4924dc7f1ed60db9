import type { Config } from '../config/schema.js';
import { connectMysql } from '../mysql/connect.js';
import { targetDdl } from '../rows/ddl.js';
import type { TableSpec } from '../rows/types.js';
import type { ShardMap } from '../shard/map.js';
import { readExistingTables, refuseShapeProblems, shapeProblems } from './shape.js';

export interface ShardTablesResult {
  server: string;
  created: number;
  existing: number;
}

export interface ShardTablesPlan {
  /** Per server: the (database, spec) pairs whose table does not exist yet. */
  missing: Map<string, { database: string; spec: TableSpec }[]>;
  existing: Map<string, number>;
}

/**
 * Reads every shard server and checks the tables that already exist; refuses (naming table and
 * column) when one has a different shape. Changes nothing: run it before any write.
 */
export async function planShardTables(config: Pick<Config, 'servers'>, map: ShardMap, specs: TableSpec[]): Promise<ShardTablesPlan> {
  const missing = new Map<string, { database: string; spec: TableSpec }[]>();
  const existing = new Map<string, number>();
  const problems: string[] = [];
  await Promise.all(
    Object.entries(config.servers).map(async ([name, server]) => {
      const databases = map.shardsOn(name).map((s) => map.databaseOf(s));
      const conn = await connectMysql(server.primary, { database: undefined }, server.tls);
      try {
        const found = await readExistingTables(conn, databases, specs.map((s) => s.target));
        const todo: { database: string; spec: TableSpec }[] = [];
        let count = 0;
        for (const database of databases) {
          for (const spec of specs) {
            const columns = found.columns.get(`${database}.${spec.target}`);
            if (!columns) todo.push({ database, spec });
            else {
              count++;
              problems.push(...shapeProblems(database, spec, columns, found.primaryKeys.get(`${database}.${spec.target}`) ?? []));
            }
          }
        }
        missing.set(name, todo);
        existing.set(name, count);
      } finally {
        await conn.end();
      }
    }),
  );
  refuseShapeProblems(problems);
  return { missing, existing };
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
