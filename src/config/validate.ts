import type { InterpolationProblem } from './interpolate.js';
import { sourceSchemes, type Config } from './schema.js';
import { formatDatabaseName } from '../shard/map.js';

export interface ShardRange {
  first: number;
  last: number;
  server: string;
  /** Index of the entry in shards.placement, for messages. */
  index: number;
}

/** "0-511" → {first:0,last:511}; 7 → {first:7,last:7}. The schema already checked the shape. */
export function parseShardRange(spec: string | number): { first: number; last: number } {
  if (typeof spec === 'number') return { first: spec, last: spec };
  const [a, b] = spec.split('-').map((s) => Number(s.trim()));
  return { first: a!, last: b ?? a! };
}

/** Rules that span several fields; each problem carries the path of the node to point at. */
export function crossCheck(config: Config): InterpolationProblem[] {
  return [...checkPlacement(config), ...checkShardDatabases(config), ...checkTables(config), ...checkCdc(config), ...checkSourceKind(config)];
}

/** MySQL's longest database name. */
const MAX_DATABASE_NAME = 64;

/**
 * The shard databases' names are MySQL names, and none may be the control store's or a legacy
 * database: repair deletes what the map does not route to a shard, so a shard database that is
 * the legacy one would have its rows deleted.
 */
function checkShardDatabases(config: Config): InterpolationProblem[] {
  const path = ['shards', 'database'];
  const pattern = config.shards.database;
  const width = /\{shard:0?(\d+)\}/.exec(pattern)?.[1];
  if (width !== undefined && Number(width) > 10) return [{ path, message: `{shard:${width}}: a width above 10 makes no sense for a shard number` }];
  const longest = formatDatabaseName(pattern, config.shards.count - 1);
  if (longest.length > MAX_DATABASE_NAME) return [{ path, message: `"${longest}" is ${longest.length} characters; MySQL database names have at most ${MAX_DATABASE_NAME}` }];
  const reserved = new Map<string, string>();
  const controlDb = decodeURIComponent(new URL(config.control.url).pathname.replace(/^\//, ''));
  if (controlDb) reserved.set(controlDb.toLowerCase(), `the control store's database (control.url)`);
  if (config.source.kind === 'mysql') {
    const sourceDb = decodeURIComponent(new URL(config.source.url).pathname.replace(/^\//, ''));
    if (sourceDb) reserved.set(sourceDb.toLowerCase(), 'the legacy database (source.url)');
    for (const [name, table] of Object.entries(config.tables)) reserved.set(table.source.split('.')[0]!.toLowerCase(), `a legacy database (tables.${name}.source)`);
  }
  for (let shard = 0; shard < config.shards.count; shard++) {
    const db = formatDatabaseName(pattern, shard);
    const taken = reserved.get(db.toLowerCase());
    if (taken) return [{ path, message: `shard ${shard}'s database "${db}" is ${taken}: shard databases must be their own` }];
  }
  return [];
}

function checkPlacement(config: Config): InterpolationProblem[] {
  const problems: InterpolationProblem[] = [];
  const { count, placement } = config.shards;
  const ranges: ShardRange[] = [];

  placement.forEach((entry, index) => {
    const path = ['shards', 'placement', index];
    const { first, last } = parseShardRange(entry.shards);
    if (!(entry.server in config.servers)) {
      const known = Object.keys(config.servers).join(', ') || 'none';
      problems.push({ path: [...path, 'server'], message: `unknown server "${entry.server}" (servers: ${known})` });
    }
    if (first > last) {
      problems.push({ path: [...path, 'shards'], message: `range ${first}-${last} is backwards` });
      return;
    }
    if (last >= count) {
      problems.push({ path: [...path, 'shards'], message: `shards ${first}-${last} go past the last shard ${count - 1} (count is ${count})` });
    }
    for (const other of ranges) {
      if (first <= other.last && other.first <= last) {
        problems.push({
          path: [...path, 'shards'],
          message: `shards ${first}-${last} overlap ${other.first}-${other.last} (server ${other.server})`,
        });
      }
    }
    ranges.push({ first, last, server: entry.server, index });
  });

  if (problems.length === 0) {
    const sorted = [...ranges].sort((a, b) => a.first - b.first);
    let next = 0;
    for (const r of sorted) {
      if (r.first > next) problems.push({ path: ['shards', 'placement'], message: `shards ${next}-${r.first - 1} are not placed on any server` });
      next = Math.max(next, r.last + 1);
    }
    if (next < count) problems.push({ path: ['shards', 'placement'], message: `shards ${next}-${count - 1} are not placed on any server` });
  }
  return problems;
}

function checkTables(config: Config): InterpolationProblem[] {
  const problems: InterpolationProblem[] = [];
  const bySource = new Map<string, string>();
  const byTarget = new Map<string, string>();
  for (const [name, table] of Object.entries(config.tables)) {
    const src = table.source.toLowerCase();
    const seenSource = bySource.get(src);
    if (seenSource) problems.push({ path: ['tables', name, 'source'], message: `source ${table.source} is already copied by table "${seenSource}"` });
    bySource.set(src, name);
    const dst = table.target.toLowerCase();
    const seenTarget = byTarget.get(dst);
    if (seenTarget) problems.push({ path: ['tables', name, 'target'], message: `target ${table.target} is already written by table "${seenTarget}"` });
    byTarget.set(dst, name);
    if (table.exclude_columns.includes(table.shard_key)) {
      problems.push({ path: ['tables', name, 'exclude_columns'], message: `the shard key ${table.shard_key} cannot be excluded` });
    }
  }
  if (Object.keys(config.tables).length === 0) problems.push({ path: ['tables'], message: 'at least one table is needed' });
  return problems;
}

function checkCdc(config: Config): InterpolationProblem[] {
  const problems: InterpolationProblem[] = [];
  for (const name of Object.keys(config.cdc?.mssql?.capture_instances ?? {})) {
    if (!(name in config.tables)) problems.push({ path: ['cdc', 'mssql', 'capture_instances', name], message: `unknown table "${name}"` });
  }
  if (config.cdc?.mssql && config.source.kind !== 'mssql') {
    problems.push({ path: ['cdc', 'mssql'], message: 'direct CDC needs source.kind: mssql' });
  }
  return problems;
}

/** source.url's scheme says the same server kind as source.kind (else one driver would talk to the other server). */
function checkSourceKind(config: Config): InterpolationProblem[] {
  const schemes = sourceSchemes(config.source.kind);
  const scheme = new URL(config.source.url).protocol;
  if (schemes.includes(scheme)) return [];
  return [{ path: ['source', 'url'], message: `source.kind is ${config.source.kind}, but the URL is ${scheme}// (use ${schemes.map((s) => `${s}//`).join(' or ')})` }];
}
