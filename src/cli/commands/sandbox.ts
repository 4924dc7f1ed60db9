import type { Command } from 'commander';
import type { Run } from '../main.js';
import { registerNotBuilt } from './not-built.js';

export function registerSandbox(program: Command, run: Run): void {
  registerNotBuilt(
    program,
    run,
    'sandbox',
    'Start a local sandbox (legacy MariaDB, control store, two shard servers, Kafka) and run the demo cutover',
    'Subcommands: up, down, status, demo.',
  );
}
