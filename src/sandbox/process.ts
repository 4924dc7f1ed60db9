import { readFileSync } from 'node:fs';

/** Whether a process we started is still there (signal 0 checks without touching it). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether `pid` is alive and still a process the sandbox in `dir` started: its command line names the
 * folder (every server's data or config lives there). After a reboot or a crash the PID may belong to
 * another program, which `sandbox down` must not signal. Where /proc cannot tell, alive counts.
 */
export function isSandboxProcess(pid: number, dir: string): boolean {
  if (!isAlive(pid)) return false;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').some((arg) => arg.includes(dir));
  } catch {
    return true;
  }
}
