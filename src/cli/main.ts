import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { redactSecrets } from '../config/secrets.js';
import { ExitCode, RefusedError } from '../errors.js';
import { logLevels } from '../log.js';
import { renderJson } from './render.js';
import { CommandContext, globalOptions, type CliIO } from './context.js';
import { claimEarlySignal, releaseEarlySignals } from './early-signals.js';
import { registerInit } from './commands/init.js';
import { registerStatus } from './commands/status.js';
import { registerFull } from './commands/full.js';
import { registerSync } from './commands/sync.js';
import { registerVerify } from './commands/verify.js';
import { registerGray } from './commands/gray.js';
import { registerShim } from './commands/shim.js';
import { registerSandbox } from './commands/sandbox.js';

/** The version in package.json (two levels up from src/cli and from dist/cli alike). */
export function membermigVersion(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

/** Runs one action and turns whatever it throws into the contract's exit code and message. */
export interface RunOptions {
  /** The action takes SIGINT/SIGTERM over with stopOnSignal, also one that came while the process started. */
  stopsOnSignal?: boolean;
}

export type Run = (cmd: Command, action: (ctx: CommandContext) => Promise<ExitCode>, options?: RunOptions) => Promise<void>;

export function buildProgram(io: CliIO, setExitCode: (code: ExitCode) => void): Command {
  const program = new Command('membermig')
    .description('Move a membership database from SQL Server into sharded MySQL without stopping the business.')
    .addOption(new Option('-c, --config <file>', 'config file (default: $MEMBERMIG_CONFIG or ./membermig.yaml)'))
    .addOption(new Option('--json', 'print one JSON document with the result on stdout (for CI)'))
    .addOption(new Option('--log-level <level>', 'log level on stderr').choices([...logLevels]).default('info'))
    .version(membermigVersion(), '-V, --version', 'print the version and exit')
    .showHelpAfterError('(run with --help for usage)')
    // Descriptions are written as lines of up to ~110 characters; a wider help keeps them as written.
    .configureHelp({ helpWidth: 120 })
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    })
    .exitOverride();

  const run: Run = async (cmd, action, options = {}) => {
    if (!options.stopsOnSignal) releaseEarlySignals();
    const ctx = new CommandContext(commandPath(cmd), globalOptions(cmd), io);
    try {
      setExitCode(await action(ctx));
    } catch (e) {
      setExitCode(reportError(ctx, e, io));
    } finally {
      claimEarlySignal(); // an action that failed before it took signals over: they are Node's again
    }
  };

  for (const register of [registerInit, registerFull, registerShim, registerSync, registerVerify, registerGray, registerStatus, registerSandbox]) {
    register(program, run);
  }
  for (const cmd of program.commands) cmd.exitOverride().configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) });
  return program;
}

/** "gray set" for a sub-command, "init" for a command: the name in messages and --json output. */
function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c && c.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

function reportError(ctx: CommandContext, e: unknown, io: CliIO): ExitCode {
  const refused = e instanceof RefusedError;
  const code = refused ? ExitCode.Refused : ExitCode.Problems;
  const message = redactSecrets(e instanceof Error ? e.message : String(e));
  io.stderr.write(`membermig ${ctx.command}: ${message}\n`);
  // The message is on the line above; the stack is for debugging only.
  if (!refused) ctx.logger.debug({ err: e }, 'command failed');
  if (ctx.json) io.stdout.write(renderJson({ command: ctx.command, ok: false, exitCode: code, error: message }) + '\n');
  return code;
}

/**
 * Runs the CLI as this process and ends it. A library can keep retrying after the command is done
 * (kafkajs goes on reconnecting to a broker that accepts connections but never answers, for
 * minutes after a stop request): the process ends a moment after the result anyway.
 */
export async function runAsProcess(argv: string[]): Promise<void> {
  process.exitCode = await main(argv);
  setTimeout(() => process.exit(), 2000).unref();
}

/** The CLI entry point; returns the process exit code. */
export async function main(argv: string[], io: CliIO = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  let exitCode: number = ExitCode.Ok;
  const program = buildProgram(io, (c) => (exitCode = c));
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version are not errors; everything else commander rejects is bad usage.
      if (e.exitCode === 0) return ExitCode.Ok;
      // CI parsing stdout gets its one document here too (commander already told stderr why).
      if (argv.includes('--json')) {
        const command = commandTyped(program, argv.slice(2));
        // Commander shows the help for a command that needs a subcommand, and says only "(outputHelp)".
        const error = e.code === 'commander.help' ? `membermig${command ? ` ${command}` : ''} needs a command: see --help` : e.message.replace(/^error: /, '');
        io.stdout.write(renderJson({ command, ok: false, exitCode: ExitCode.Refused, error }) + '\n');
      }
      return ExitCode.Refused;
    }
    throw e;
  }
  return exitCode;
}

/** The command path in argv ("status", "gray check"), skipping options and their values; null if none. */
function commandTyped(program: Command, args: string[]): string | null {
  const names: string[] = [];
  let at: Command = program;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') break;
    if (arg.startsWith('-')) {
      // `--config FILE`: FILE is no command, whatever its name.
      if (!arg.includes('=') && takesValue(at, arg)) i++;
      continue;
    }
    const sub = at.commands.find((c) => c.name() === arg || c.aliases().includes(arg));
    if (!sub) continue;
    names.push(sub.name());
    at = sub;
  }
  return names.length > 0 ? names.join(' ') : null;
}

/** Whether `flag` names an option of `cmd` or of a command above it that takes a value. */
function takesValue(cmd: Command, flag: string): boolean {
  for (let c: Command | null = cmd; c; c = c.parent) {
    const option = c.options.find((o) => o.long === flag || o.short === flag);
    if (option) return option.required || option.optional;
  }
  return false;
}
