/**
 * SIGINT/SIGTERM while the CLI starts (its modules load, the config is read), before the command
 * can take signals over. Node's default would end the process with 130 and no result; noted here
 * instead, a command that stops on signals (stopOnSignal: full, verify, sync) starts stopped and
 * reports it like any stop, and any other command dies of the signal as it would have (the signal
 * is raised again when it starts). No imports: bin/membermig loads this before the rest.
 *
 * Node delivers a signal to the listeners there are when its event loop gets to it, and stops
 * watching a signal once its last listener goes: a signal that came just before that is lost. So
 * noting never ends with no listener left: a command that stops on signals puts its own on first
 * (claimEarlySignal after them), the others get one that ends the process as Node would
 * (releaseEarlySignals).
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

/**
 * For a command that stops on signals, once its own SIGINT/SIGTERM listeners are on: the signal
 * noted while it started, if any (noting ends).
 */
export function claimEarlySignal(): NodeJS.Signals | null {
  return stopNoting();
}

/**
 * For a command that does not stop on signals: noting ends, and the process dies of a signal
 * noted meanwhile, or of the next one, as Node's default would have it (unless the command listens
 * for it by then, as `status --watch` does).
 */
export function releaseEarlySignals(): void {
  if (!listening) return;
  process.on('SIGINT', dieOfIt);
  process.on('SIGTERM', dieOfIt);
  const signal = stopNoting();
  if (signal) dieOfIt(signal);
}

function dieOfIt(signal: NodeJS.Signals): void {
  process.off('SIGINT', dieOfIt);
  process.off('SIGTERM', dieOfIt);
  // With no listener left Node no longer handles the signal: raised again, it ends the process.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}
