import type { Command } from 'commander';
import type { Run } from '../main.js';
import { registerNotBuilt } from './not-built.js';

export function registerShim(program: Command, run: Run): void {
  registerNotBuilt(
    program,
    run,
    'shim',
    'Phase 2: set how application services write each table (legacy only, dual writes, MySQL only)',
    'Modes: legacy_only -> dual_legacy_primary -> dual_mysql_primary -> mysql_only.',
  );
}
