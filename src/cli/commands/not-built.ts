import type { Command } from 'commander';
import { NotBuiltError } from '../../errors.js';
import type { Run } from '../main.js';

/** A command whose work is not built yet: it is listed, explains itself, and refuses honestly. */
export function registerNotBuilt(program: Command, run: Run, name: string, summary: string, help: string): Command {
  const cmd = program.command(name).summary(summary).description(`${summary}\n\n${help}`).allowUnknownOption().allowExcessArguments();
  cmd.action(async (_opts, self: Command) => run(self, async () => Promise.reject(new NotBuiltError(name))));
  return cmd;
}
