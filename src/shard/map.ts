import type { Config } from '../config/schema.js';
import { parseShardRange } from '../config/validate.js';
import { crc32, murmur3 } from './hash.js';

export type ShardFunction = 'mod' | 'crc32' | 'murmur3';

/** A shard-key value as it comes from a row, an event or an application. */
export type ShardKey = string | number | bigint;

export interface ShardServer {
  name: string;
  primary: string;
  replicas: string[];
  dc?: string;
}

export interface ShardLocation {
  shard: number;
  database: string;
  server: ShardServer;
}

export interface ShardMapSpec {
  count: number;
  function: ShardFunction;
  /** Database name pattern with {shard} or {shard:04}. */
  database: string;
  /** server name per logical shard, index = shard number */
  serverOf: string[];
  servers: Record<string, ShardServer>;
}

/**
 * The one place where a key becomes a logical shard, a database and a server.
 * Every path (copy, sync, verify, shim) routes through this.
 */
export interface ShardMap {
  readonly count: number;
  readonly function: ShardFunction;
  shardOf(key: ShardKey): number;
  databaseOf(shard: number): string;
  serverOf(shard: number): ShardServer;
  locate(key: ShardKey): ShardLocation;
  /** All shards placed on one server, ascending. */
  shardsOn(server: string): number[];
  servers(): ShardServer[];
  /** The SQL expression (MySQL) that computes the shard of `column`, where one exists. */
  sqlShardExpression(column: string, options?: { integerColumn?: boolean }): string | undefined;
}

/** The text form of a key: decimal digits for integers, the string itself otherwise. */
export function keyText(key: ShardKey): string {
  if (typeof key === 'string') return key;
  if (typeof key === 'bigint') return key.toString();
  if (!Number.isSafeInteger(key)) {
    throw new RangeError(`shard key ${key} is not a safe integer: pass 64-bit keys as bigint or decimal string`);
  }
  return String(key);
}

const INTEGER_TEXT = /^-?\d+$/;

/** `k mod count`, never negative, exact for 64-bit keys. */
export function modShard(key: ShardKey, count: number): number {
  if (typeof key === 'number') {
    if (!Number.isSafeInteger(key)) throw new RangeError(`shard key ${key} is not a safe integer`);
    return ((key % count) + count) % count;
  }
  const text = typeof key === 'bigint' ? key.toString() : key;
  if (!INTEGER_TEXT.test(text)) throw new TypeError(`mod sharding needs an integer key, got "${text}"`);
  // SQL computes the same shard through DECIMAL(65,0) (sqlShardExpression), which saturates past 65 digits.
  if (text.replace(/^-?0*/, '').length > 65) throw new RangeError(`mod sharding takes integer keys of up to 65 digits, got one of ${text.replace(/^-/, '').length}`);
  // Below 2^53 a plain number is exact and much faster than BigInt.
  if (text.length < 16) {
    const n = Number(text);
    return ((n % count) + count) % count;
  }
  const big = BigInt(text) % BigInt(count);
  return Number(big < 0n ? big + BigInt(count) : big);
}

export function shardOfKey(key: ShardKey, fn: ShardFunction, count: number): number {
  switch (fn) {
    case 'mod':
      return modShard(key, count);
    case 'crc32':
      return crc32(keyText(key)) % count;
    case 'murmur3':
      return murmur3(keyText(key)) % count;
  }
}

/** `member_{shard:04}` with shard 7 → `member_0007`. */
export function formatDatabaseName(pattern: string, shard: number): string {
  return pattern.replace(/\{shard(?::(0?)(\d+))?\}/g, (_m, _zero: string | undefined, width: string | undefined) =>
    width ? String(shard).padStart(Number(width), '0') : String(shard),
  );
}

export function createShardMap(spec: ShardMapSpec): ShardMap {
  const { count, database } = spec;
  const fn = spec.function;
  const dbNames = Array.from({ length: count }, (_, s) => formatDatabaseName(database, s));
  const serverOfShard = spec.serverOf.map((name) => {
    const server = spec.servers[name];
    if (!server) throw new Error(`shard placed on unknown server ${name}`);
    return server;
  });
  if (serverOfShard.length !== count) throw new Error(`placement covers ${serverOfShard.length} shards, expected ${count}`);

  const checkShard = (shard: number): void => {
    if (!Number.isInteger(shard) || shard < 0 || shard >= count) throw new RangeError(`shard ${shard} is outside 0..${count - 1}`);
  };

  return {
    count,
    function: fn,
    shardOf: (key) => shardOfKey(key, fn, count),
    databaseOf: (shard) => {
      checkShard(shard);
      return dbNames[shard]!;
    },
    serverOf: (shard) => {
      checkShard(shard);
      return serverOfShard[shard]!;
    },
    locate(key) {
      const shard = shardOfKey(key, fn, count);
      return { shard, database: dbNames[shard]!, server: serverOfShard[shard]! };
    },
    shardsOn: (server) => serverOfShard.flatMap((s, shard) => (s.name === server ? [shard] : [])),
    servers: () => Object.values(spec.servers),
    sqlShardExpression(column, options = {}) {
      if (fn === 'crc32') return `(CRC32(${column}) % ${count})`;
      if (fn === 'mod') {
        // MOD of a negative key is negative in SQL, the contract's mod never is; text goes through
        // DECIMAL, as MOD on text would take it as a double (inexact past 2^53).
        const key = options.integerColumn ? column : `CAST(${column} AS DECIMAL(65,0))`;
        return `MOD(MOD(${key}, ${count}) + ${count}, ${count})`;
      }
      return undefined;
    },
  };
}

/** Builds the shard map of a validated config. */
export function shardMapFromConfig(config: Pick<Config, 'shards' | 'servers'>): ShardMap {
  const serverOf = new Array<string>(config.shards.count);
  for (const entry of config.shards.placement) {
    const { first, last } = parseShardRange(entry.shards);
    for (let s = first; s <= last; s++) serverOf[s] = entry.server;
  }
  const servers: Record<string, ShardServer> = {};
  for (const [name, s] of Object.entries(config.servers)) {
    servers[name] = { name, primary: s.primary, replicas: s.replicas, ...(s.dc ? { dc: s.dc } : {}) };
  }
  return createShardMap({ count: config.shards.count, function: config.shards.function, database: config.shards.database, serverOf, servers });
}
