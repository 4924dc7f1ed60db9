import type { Command } from 'commander';
import type { Run } from '../main.js';
import { registerNotBuilt } from './not-built.js';

export function registerVerify(program: Command, run: Run): void {
  registerNotBuilt(
    program,
    run,
    'verify',
    'Phase 4: compare legacy and shards by chunk checksums, find the differing rows, optionally repair them',
    'Exit 0 when clean, 1 when differences persist.',
  );
}
