/**
 * SIGINT/SIGTERM while the CLI starts (its modules load, the config is read), before the command
 * can take signals over. Node's default would end the process with 130 and no result; noted here
 * instead, a command that stops on signals (stopOnSignal: full, verify, sync) starts stopped and
 * reports it like any stop, and any other command dies of the signal as it would have (the signal
 * is raised again when it starts). No imports: bin/membermig loads this before the rest.
 */

let noted: NodeJS.Signals | null = null;
let listening = false;
const note = (signal: NodeJS.Signals) => {
  noted ??= signal;
};

/** From now until the command starts, signals are noted (the process entry points call this first). */
export function noteEarlySignals(): void {
  if (listening) return;
  listening = true;
  process.on('SIGINT', note);
  process.on('SIGTERM', note);
}

function stopNoting(): NodeJS.Signals | null {
  if (listening) {
    process.off('SIGINT', note);
    process.off('SIGTERM', note);
    listening = false;
  }
  const signal = noted;
  noted = null;
  return signal;
}

/** For a command that stops on signals: the signal noted while it started, if any (noting ends). */
export function claimEarlySignal(): NodeJS.Signals | null {
  return stopNoting();
}

/** For a command that does not stop on signals: noting ends, and a signal noted meanwhile is raised again. */
export function releaseEarlySignals(): void {
  const signal = stopNoting();
  if (signal) process.kill(process.pid, signal);
}
