import type { Command } from 'commander';
import type { Run } from '../main.js';
import { registerNotBuilt } from './not-built.js';

export function registerFull(program: Command, run: Run): void {
  registerNotBuilt(
    program,
    run,
    'full',
    'Phase 1: copy every row from the legacy database into its shard, resumable after any crash',
    'Records the change-capture start position first, then copies each table chunk by chunk.',
  );
}
