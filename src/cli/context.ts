import { setMaxListeners } from 'node:events';
import { constants as osConstants } from 'node:os';
import type { Command } from 'commander';
import { defaultConfigPath, loadConfig, type LoadedConfig } from '../config/load.js';
import { redactSecrets } from '../config/secrets.js';
import { ExitCode } from '../errors.js';
import { createLogger, type Logger, type LogLevel } from '../log.js';
import { claimEarlySignal } from './early-signals.js';
import { renderJson } from './render.js';

export interface CliIO {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

export interface GlobalOptions {
  config?: string;
  json?: boolean;
  logLevel: LogLevel;
  /** --log-level was given on the command line (not its default). */
  logLevelGiven?: boolean;
}

/** What a command's action gets: the global flags, a logger on stderr, and output helpers. */
export class CommandContext {
  readonly logger: Logger;
  constructor(
    readonly command: string,
    readonly options: GlobalOptions,
    readonly io: CliIO,
  ) {
    // --json quiets the default level to warnings; a level asked for (--json --log-level info) is kept.
    this.logger = createLogger(options.json && !options.logLevelGiven ? 'warn' : options.logLevel, io.stderr);
  }

  get json(): boolean {
    return this.options.json === true;
  }

  get configPath(): string {
    return this.options.config ?? defaultConfigPath();
  }

  /** Loads and validates the config; throws ConfigError (exit 2) before anything connects. */
  loadConfig(): LoadedConfig {
    return loadConfig(this.configPath);
  }

  /**
   * Prints the command's result on stdout: one JSON document with --json, else the text that
   * `human` renders. Returns the exit code so actions can `return ctx.finish(...)`. A command that
   * prints a result again and again (`status --watch`) passes `stream`: with --json each result is
   * then one line (JSON Lines), so the output stays machine-readable.
   */
  finish<T>(exitCode: ExitCode, result: T, human: (r: T) => string, stream = false): ExitCode {
    if (this.json) this.io.stdout.write(renderJson({ command: this.command, ok: exitCode === ExitCode.Ok, exitCode, result }, stream) + '\n');
    else this.io.stdout.write(redactSecrets(human(result)) + '\n');
    return exitCode;
  }
}

export type Action = (ctx: CommandContext, ...args: unknown[]) => Promise<ExitCode>;

/** Global flags as commander parsed them, from any sub-command. */
export function globalOptions(cmd: Command): GlobalOptions {
  return { ...(cmd.optsWithGlobals() as GlobalOptions), logLevelGiven: cmd.getOptionValueSourceWithGlobals('logLevel') === 'cli' };
}

/** For `run(cmd, action, STOPS_ON_SIGNAL)`: the action calls stopOnSignal. */
export const STOPS_ON_SIGNAL = { stopsOnSignal: true } as const;

/**
 * An abort signal for the first SIGINT or SIGTERM, logged as `what`; a second signal ends the
 * process at once with 128 + its number (130 for SIGINT) as Node's default would, but with --json
 * after its one JSON document (CI parsing stdout would otherwise find nothing). `release()`
 * removes the handlers.
 * A signal that came while the process started (src/cli/early-signals.ts) is the first: the
 * signal is aborted already.
 */
export function stopOnSignal(ctx: CommandContext, what: string): { signal: AbortSignal; release(): void } {
  const stop = new AbortController();
  // Every wait of a run (verify's re-checks, many at once) listens on it: no leak, and Node's warning would say one.
  setMaxListeners(0, stop.signal);
  const onSignal = (signal: NodeJS.Signals) => {
    if (stop.signal.aborted) quitAtOnce(ctx, signal);
    ctx.logger.warn({ signal }, what);
    stop.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // After ours are on: Node keeps watching the signals, so none that came meanwhile is lost.
  const release = () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
  const early = claimEarlySignal();
  if (early) onSignal(early);
  return { signal: stop.signal, release };
}

/** The second signal: the work in hand is dropped, not finished. */
function quitAtOnce(ctx: CommandContext, signal: NodeJS.Signals): never {
  // 128 + the signal's number: what a shell reports for a process the signal ended (130 for SIGINT).
  const exitCode = 128 + osConstants.signals[signal];
  const error = `quit at once on a second ${signal}: the work in hand was not finished; a rerun goes on from what was recorded`;
  ctx.io.stderr.write(`membermig ${ctx.command}: ${error}\n`);
  // One line: a document on its own for a one-shot command, and the last line of a --watch stream.
  if (ctx.json) ctx.io.stdout.write(renderJson({ command: ctx.command, ok: false, exitCode, error }, true) + '\n');
  // Node writes stdout and stderr synchronously to files, pipes and terminals on Linux: nothing is lost by exiting now.
  process.exit(exitCode);
}
