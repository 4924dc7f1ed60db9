import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from './cli.js';

const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
/** A preload that prints the process's peak RSS (kilobytes, getrusage) as it exits. */
const REPORT = `data:text/javascript,process.on('exit',()=>process.stderr.write('PEAK_RSS_KB='+process.resourceUsage().maxRSS+'\\n'))`;

/**
 * Runs the CLI as a child process (from source, through tsx, as spawnCli does) to completion, and
 * reads its peak RSS from its own resource usage at exit. tsx and the source transform put
 * ~120-150 MB under any command.
 */
export async function cliPeakRss(args: string[]): Promise<{ code: number; stderr: string; peakMb: number }> {
  const child = spawn(process.execPath, ['--import', TSX, '--import', REPORT, join(ROOT, 'src/cli/run.ts'), ...args], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? -1)));
  const kb = /PEAK_RSS_KB=(\d+)/.exec(stderr);
  return { code, stderr, peakMb: kb ? Number(kb[1]) / 1024 : NaN };
}
