import { PassThrough } from 'node:stream';
import { Command, Option } from 'commander';
import { describe, expect, it } from 'vitest';
import { CommandContext, globalOptions } from './context.js';

/** The logger a command gets from the global flags, as main.ts builds its context. */
function loggerLevel(args: string[]): string {
  let level = '';
  const program = new Command('membermig')
    .addOption(new Option('--json'))
    .addOption(new Option('--log-level <level>').default('info'))
    .exitOverride();
  program.command('status').action((_options, cmd: Command) => {
    level = new CommandContext('status', globalOptions(cmd), { stdout: new PassThrough(), stderr: new PassThrough() }).logger.level;
  });
  program.parse(['node', 'membermig', ...args, 'status']);
  return level;
}

describe('the log level of a command', () => {
  it('is warn under --json by default, and what was asked for when given (--json --log-level info)', () => {
    expect(loggerLevel([])).toBe('info');
    expect(loggerLevel(['--json'])).toBe('warn');
    expect(loggerLevel(['--json', '--log-level', 'info'])).toBe('info');
    expect(loggerLevel(['--json', '--log-level', 'debug'])).toBe('debug');
  });
});
