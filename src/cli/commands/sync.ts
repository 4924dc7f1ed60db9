import type { Command } from 'commander';
import type { Run } from '../main.js';
import { registerNotBuilt } from './not-built.js';

export function registerSync(program: Command, run: Run): void {
  registerNotBuilt(
    program,
    run,
    'sync',
    'Phase 3: apply change events (CDC through Kafka, Debezium format) to the shards and keep lag near zero',
    'Starts where `full` recorded the start position; every write is an idempotent upsert or delete.',
  );
}
