import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { main } from '../../src/cli/main.js';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** tsx's loader as a file URL: a child started in another working directory finds it too. */
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in this process with captured stdout and stderr. */
export async function runCli(args: string[]): Promise<CliResult> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await main(['node', 'membermig', ...args], { stdout, stderr });
  return { code, stdout: out, stderr: err };
}

/** Starts the CLI as a real child process (from source, through tsx), e.g. to kill it with SIGKILL. */
export function spawnCli(args: string[], env: NodeJS.ProcessEnv = process.env, cwd = ROOT): ChildProcess {
  return spawn(process.execPath, ['--import', TSX, join(ROOT, 'src/cli/run.ts'), ...args], {
    cwd,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Runs the CLI as a child process to completion. */
export async function execCli(args: string[], env: NodeJS.ProcessEnv = process.env, cwd = ROOT): Promise<CliResult> {
  const child = spawnCli(args, env, cwd);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? -1)));
  return { code, stdout, stderr };
}

/** A CLI child process whose output is kept, with a way to wait until its log says something. */
export interface WatchedCli {
  child: ChildProcess;
  readonly stdout: string;
  readonly stderr: string;
  /** The exit code once it has ended. */
  closed: Promise<number | null>;
  /** Waits until stderr holds `text` (up to `timeoutMs`); fails the test if it never does. */
  untilLogged(text: string, timeoutMs?: number): Promise<void>;
}

export function watchCli(args: string[], env: NodeJS.ProcessEnv = process.env): WatchedCli {
  const child = spawnCli(args, env);
  const out = { stdout: '', stderr: '' };
  child.stdout!.on('data', (d: Buffer) => (out.stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out.stderr += d.toString()));
  const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
  return {
    child,
    get stdout() {
      return out.stdout;
    },
    get stderr() {
      return out.stderr;
    },
    closed,
    async untilLogged(text, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (!out.stderr.includes(text) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      if (!out.stderr.includes(text)) throw new Error(`the CLI did not log "${text}" within ${timeoutMs / 1000} s:\n${out.stderr.slice(-2000)}`);
    },
  };
}

/** The CLI with a signal arriving while it loads, before the command runs (test/fixtures/cli/signal-at-start.ts). */
export function signalledAtStart(args: string[], signal: 'SIGINT' | 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', TSX, join(ROOT, 'test/fixtures/cli/signal-at-start.ts'), ...args], {
    cwd: ROOT,
    env: { ...process.env, SIGNAL: signal },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code, sig) => resolve({ code, signal: sig, stdout, stderr })));
}
