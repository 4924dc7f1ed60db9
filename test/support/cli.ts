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
