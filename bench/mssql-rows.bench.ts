import { mssqlTypeMap } from '../src/rows/mssql/typemap.js';
import type { SourceType } from '../src/rows/types.js';
import type { Benchmark } from './types.js';

/**
 * CPU cost of the SQL Server row conversion (type map, per value checks) on a member-like row, as
 * tedious hands the values over for the map's SELECT expressions. No server: this is the JS work per
 * row the copy pays on top of reading and writing (baselines.md: ~13 µs/row is the whole budget).
 */
const columns: [SourceType, unknown][] = [
  [{ dataType: 'bigint' }, '9007199254740993'],
  [{ dataType: 'nvarchar', length: 50, collation: 'Chinese_PRC_CI_AS' }, '张伟喆'],
  // Non-Unicode text arrives as its bytes (CAST to varbinary) and is decoded as Windows decodes CP936.
  [{ dataType: 'varchar', length: 100, collation: 'Chinese_PRC_CI_AS' }, Buffer.from('zhang.wei@example.com')],
  [{ dataType: 'decimal', precision: 18, scale: 2 }, '12345.67'],
  [{ dataType: 'money' }, '99.5000'],
  [{ dataType: 'tinyint' }, 3],
  [{ dataType: 'bit' }, true],
  [{ dataType: 'uniqueidentifier' }, '6F9619FF-8B86-D011-B42D-00C04FC964FF'],
  [{ dataType: 'datetime' }, '2024-03-01 10:00:00.003'],
  [{ dataType: 'datetime2', scale: 7 }, '2024-03-02 09:00:00.1234560'],
  [{ dataType: 'date' }, '1990-05-17'],
  [{ dataType: 'nvarchar', length: 200, collation: 'Chinese_PRC_CI_AS' }, null],
];

const bench: Benchmark = {
  name: 'mssql-rows',
  description: 'SQL Server row conversion: member-like rows (12 columns) converted per second, one core',
  async run() {
    const conversions = columns.map(([type], i) => mssqlTypeMap.conversion(type, `c${i}`));
    const raw: Record<string, unknown> = Object.fromEntries(columns.map(([, v], i) => [`c${i}`, v]));
    const aliases = conversions.map((_c, i) => `c${i}`);
    const convertRow = () => conversions.map((c, i) => c.convert(raw[aliases[i]!]));
    let sink = 0;
    for (let i = 0; i < 50_000; i++) sink += convertRow().length; // warm-up
    const N = 500_000;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) sink += convertRow().length;
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    return {
      name: 'mssql-rows',
      figures: [
        { measure: 'rows converted', value: N / seconds, unit: 'rows/s', note: `checksum ${sink % 997}` },
        { measure: 'CPU per row', value: (seconds / N) * 1e6, unit: 'µs/row' },
      ],
      ratios: [],
    };
  },
};
export default bench;
