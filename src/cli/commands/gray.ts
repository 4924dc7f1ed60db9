import type { Command } from 'commander';
import type { Run } from '../main.js';
import { registerNotBuilt } from './not-built.js';

export function registerGray(program: Command, run: Run): void {
  registerNotBuilt(
    program,
    run,
    'gray',
    "Phase 5: move a percentage of members' reads and writes to MySQL; roll back instantly",
    'Raising a percentage is gated on a clean, recent verify and a small sync lag; rollback never is.',
  );
}
