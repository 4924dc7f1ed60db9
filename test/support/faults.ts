import type { ChildProcess } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { connectMysql } from '../../src/mysql/connect.js';
import type { Config } from '../../src/config/schema.js';
import { spawnCli } from './cli.js';
import type { RowComparison } from './compare.js';
import { mulberry32 } from '../../src/sandbox/random.js';

/**
 * Helpers for the fault suite (test/faults): seeded fault points, child processes to kill, and a
 * row-by-row comparison of a legacy table with its shards. `npm run soak` runs the same tests with
 * more points (SOAK_POINTS) and sums what each scenario records in FAULTS_REPORT.
 */

/** Kill points per command: 3 in CI, SOAK_POINTS in the soak. */
export function faultPoints(ci = 3): number {
  const n = Number(process.env.SOAK_POINTS ?? '');
  return Number.isInteger(n) && n > 0 ? n : ci;
}

/** The seed of this run's random fault points (FAULTS_SEED, else fixed so CI is repeatable). */
export function faultSeed(): number {
  const n = Number(process.env.FAULTS_SEED ?? '');
  return Number.isInteger(n) ? n : 20261127;
}

/** A small seeded generator (mulberry32): the same seed gives the same fault points. */
export function seededRandom(seed = faultSeed()): () => number {
  return mulberry32(seed);
}

/** Per-test timeout that grows with the number of fault points. */
export function faultTimeout(perPointMs: number, baseMs = 60_000): number {
  return baseMs + faultPoints() * perPointMs;
}

export interface FaultRecord {
  scenario: string;
  faults: number;
  recoveries: number;
  rowsChecked: number;
  differences: number;
}

/** Appends one scenario's figures to FAULTS_REPORT (a JSON-lines file the soak runner sums). */
export function recordFaults(record: FaultRecord): void {
  const file = process.env.FAULTS_REPORT;
  if (file) appendFileSync(file, JSON.stringify(record) + '\n');
}

export interface Child {
  proc: ChildProcess;
  stdout: string;
  stderr: string;
  /** Exit code, or 128 + nothing when killed by a signal (reported as 'signal'). */
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts the CLI as a child process and keeps its output. */
export function startCli(args: string[], env: NodeJS.ProcessEnv = process.env): Child {
  const proc = spawnCli(args, env);
  const child: Child = { proc, stdout: '', stderr: '', exit: Promise.resolve({ code: 0, signal: null }) };
  proc.stdout!.on('data', (d: Buffer) => (child.stdout += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (child.stderr += d.toString()));
  child.exit = new Promise((resolve) => proc.on('close', (code, signal) => resolve({ code, signal })));
  return child;
}

/** Waits `ms`, then kill -9s the child if it is still running; true if it was killed (not already done). */
export async function killAfter(child: Child, ms: number): Promise<boolean> {
  const done = await Promise.race([child.exit.then(() => true), sleep(ms).then(() => false)]);
  if (done) return false;
  child.proc.kill('SIGKILL');
  const { signal } = await child.exit;
  return signal === 'SIGKILL';
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** One value of a control-store query (0 if the table is not there yet). */
export async function controlNumber(config: Config, sql: string): Promise<number> {
  const conn = await connectMysql(config.control.url);
  try {
    const [rows] = await conn.query(sql);
    return Number((rows as { n: number | string | null }[])[0]?.n ?? 0);
  } catch {
    return 0;
  } finally {
    await conn.end();
  }
}

/** Waits for a child at most `ms`; a child still running then is killed (-9) and reported as hung. */
export async function exitWithin(child: Child, ms: number): Promise<{ code: number | null; hung: boolean }> {
  const done = await Promise.race([child.exit.then((e) => e), sleep(ms).then(() => null)]);
  if (done) return { code: done.code, hung: false };
  child.proc.kill('SIGKILL');
  await child.exit;
  return { code: null, hung: true };
}

/** Runs the CLI as a child process to the end, or at most `ms` (then it is killed and `hung` is true). */
export async function execWithin(args: string[], ms: number, env: NodeJS.ProcessEnv = process.env): Promise<{ code: number | null; hung: boolean; stdout: string; stderr: string }> {
  const child = startCli(args, env);
  const r = await exitWithin(child, ms);
  return { ...r, stdout: child.stdout, stderr: child.stderr };
}

/**
 * Records a scenario's figures (for the soak), then fails on any difference or a row count that is
 * off. Every fault injected counts as recovered once the shards are found equal to legacy.
 */
export function expectConverged(cmp: RowComparison, scenario: string, faults: number, expectedRows = cmp.legacyRows): void {
  const converged = cmp.differences.length === 0 && cmp.shardRows === expectedRows;
  recordFaults({ scenario, faults, recoveries: converged ? faults : 0, rowsChecked: cmp.legacyRows, differences: cmp.differences.length + Math.abs(cmp.shardRows - expectedRows) });
  if (cmp.differences.length > 0) throw new Error(`${scenario}: ${cmp.differences.length} differences, e.g.\n${cmp.differences.slice(0, 10).join('\n')}`);
  if (cmp.shardRows !== expectedRows) throw new Error(`${scenario}: ${cmp.shardRows} rows in the shards, expected ${expectedRows}`);
}
