import type { Admin } from 'kafkajs';
import type { Logger } from '../log.js';
import type { ControlStore } from '../store/control.js';
import { markPartitionsBehind, markPartitionsCaughtUp, type CaughtUpPartition } from './offsets.js';

// How far the sync consumer group has come on the change topics, against their ends.

/** Resolves when the group's committed offsets have reached the end of every partition. */
export async function watchCaughtUp(admin: Admin, group: string, topics: string[], everyMs: number, stopping: () => boolean, nothingParked: () => Promise<boolean>): Promise<void> {
  for (;;) {
    await new Promise((r) => setTimeout(r, everyMs));
    if (stopping()) return new Promise<never>(() => {});
    try {
      if ((await isCaughtUp(admin, group, topics)) && (await nothingParked())) return;
    } catch {
      // The broker may be restarting; ask again.
    }
  }
}

export async function isCaughtUp(admin: Admin, group: string, topics: string[]): Promise<boolean> {
  return (await partitionProgress(admin, group, topics)).every((p) => p.caughtUp);
}

/** A partition of a change topic: the group's committed offset against what the broker keeps. */
export interface PartitionProgress extends CaughtUpPartition {
  /** The oldest offset the broker keeps (retention or a records delete removed those before it). */
  lowWatermark: string;
  /** Whether the group has committed an offset in it at all (else nextOffset is 0). */
  committed: boolean;
  caughtUp: boolean;
}

/** Each partition of the topics: the group's committed offset against the partition's ends. */
export async function partitionProgress(admin: Admin, group: string, topics: string[]): Promise<PartitionProgress[]> {
  const committed = await admin.fetchOffsets({ groupId: group, topics });
  const out: PartitionProgress[] = [];
  for (const topic of topics) {
    const ends = await admin.fetchTopicOffsets(topic);
    const done = committed.find((t) => t.topic === topic)?.partitions ?? [];
    for (const end of ends) {
      const c = done.find((p) => p.partition === end.partition)?.offset ?? '-1';
      const high = BigInt(end.high);
      const next = c === '-1' ? 0n : BigInt(c);
      out.push({
        group,
        topic,
        partition: end.partition,
        nextOffset: next.toString(),
        highWatermark: end.high,
        lowWatermark: end.low,
        committed: c !== '-1',
        caughtUp: high === 0n || (c !== '-1' && next >= high),
      });
    }
  }
  return out;
}

/** How often a running sync tells the control store which partitions are caught up (the gray gate's lag is seconds). */
const CAUGHT_UP_EVERY_MS = 2000;


/**
 * Keeps the mirror (cdc_offsets) fresh while sync runs: quiet partitions are marked caught up, else
 * the gray gate reads them as lagging; partitions behind get a row too, else the gate does not see
 * them at all. Returns the function that stops it.
 */
export function keepMirrorFresh(admin: Admin, store: ControlStore, group: string, topics: string[], logger: Logger): () => void {
  const timer = setInterval(() => {
    void partitionProgress(admin, group, topics)
      .then(async (progress) => {
        await markPartitionsCaughtUp(store.pool, progress.filter((p) => p.caughtUp));
        await markPartitionsBehind(store.pool, progress.filter((p) => !p.caughtUp));
      })
      .catch((e: Error) => logger.debug({ err: e.message }, 'could not refresh caught-up partitions'));
  }, CAUGHT_UP_EVERY_MS);
  timer.unref();
  return () => clearInterval(timer);
}
