import type { SourceReader } from '../source/reader.js';
import { applyChanges, type ApplyContext } from './apply.js';
import { redoFromLegacy } from './legacy-redo.js';
import type { ChangeEvent } from './types.js';

/**
 * Replaying a dead letter after a fix: its keys are copied again from the legacy side, rather
 * than its stored image applied. Later events of the same key may already be applied, and the
 * stored image would take the row back in time; legacy holds the row as of now, and the events
 * still to come apply on top of it in log order (the copy-then-replay argument of `full`).
 * Returns why it could not, or null when the keys are in step.
 */
export async function recopyKeys(apply: ApplyContext, reader: SourceReader, events: ChangeEvent[]): Promise<string | null> {
  const redo = await redoFromLegacy(apply.specs, reader, events);
  if (typeof redo === 'string') return redo;
  const { failed } = await applyChanges({ ...apply, legacy: undefined }, redo.flat());
  return failed[0]?.reason ?? null;
}
