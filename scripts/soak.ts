/**
 * `npm run soak`: the fault suite (test/faults) with many more fault points, then one table of what
 * happened: faults injected, recoveries, rows checked row by row, differences (must be 0), and the
 * same as one JSON line at the end.
 *
 *   SOAK_POINTS   kill/cut points per command (default 20; CI runs 3)
 *   FAULTS_SEED   seed of the random fault points (default: the time, printed, so a run can be repeated)
 *   SOAK_FILES    test files to run (default: every file in test/faults)
 *
 * Exit 0 when every test passed and no difference was found, 1 otherwise.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

interface FaultRecord {
  scenario: string;
  faults: number;
  recoveries: number;
  rowsChecked: number;
  differences: number;
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const points = process.env.SOAK_POINTS ?? '20';
const seed = process.env.FAULTS_SEED ?? String(Date.now() % 1_000_000_007);
const files = (process.env.SOAK_FILES ?? 'test/faults').split(/[\s,]+/).filter(Boolean);
const dir = mkdtempSync(join(tmpdir(), 'membermig-soak-'));
const report = join(dir, 'faults.jsonl');

process.stderr.write(`soak: SOAK_POINTS=${points} FAULTS_SEED=${seed} files=${files.join(' ')}\n`);
const started = Date.now();
// One file at a time: the machine's cores go to the servers and the processes being killed.
const vitest = spawnSync(process.execPath, [join(root, 'node_modules/vitest/vitest.mjs'), 'run', '--maxWorkers=1', '--minWorkers=1', ...files], {
  cwd: root,
  stdio: ['ignore', 'inherit', 'inherit'],
  env: { ...process.env, SOAK_POINTS: points, FAULTS_SEED: seed, FAULTS_REPORT: report },
});
const seconds = (Date.now() - started) / 1000;

const records: FaultRecord[] = existsSync(report)
  ? readFileSync(report, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as FaultRecord)
  : [];
rmSync(dir, { recursive: true, force: true });

const total = records.reduce(
  (t, r) => ({ faults: t.faults + r.faults, recoveries: t.recoveries + r.recoveries, rowsChecked: t.rowsChecked + r.rowsChecked, differences: t.differences + r.differences }),
  { faults: 0, recoveries: 0, rowsChecked: 0, differences: 0 },
);
const header = ['scenario', 'faults injected', 'recoveries', 'rows checked', 'differences'];
const lines = [...records.map((r) => [r.scenario, r.faults, r.recoveries, r.rowsChecked, r.differences]), ['total', total.faults, total.recoveries, total.rowsChecked, total.differences]].map((r) =>
  r.map(String),
);
const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
const format = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
const testsPassed = vitest.status === 0;
console.log('');
console.log(format(header));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const l of lines) console.log(format(l));
console.log(`\n${testsPassed ? 'all fault tests passed' : `fault tests FAILED (vitest exit ${vitest.status ?? vitest.signal})`}; ${seconds.toFixed(0)} s; seed ${seed}`);
console.log(JSON.stringify({ soakPoints: Number(points), seed: Number(seed), seconds: Math.round(seconds), testsPassed, scenarios: records.length, ...total }));
process.exit(testsPassed && total.differences === 0 && records.length > 0 ? 0 : 1);
