import type { Pool } from 'mysql2/promise';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { MssqlReader } from '../source/mssql/reader.js';
import type { SourceReader } from '../source/reader.js';
import { CaptureInstancesProbe } from './in-flight-mssql.js';
import { KafkaTopicsProbe } from './in-flight-kafka.js';

/**
 * How far a change source has gone and how far sync has applied it: Kafka's change topics
 * (in-flight-kafka.ts) or SQL Server's CDC (in-flight-mssql.ts).
 */
export interface ChangeSourceProbe<End> {
  /** Named in warnings: "cannot ask <name> how far sync is". */
  readonly name: string;
  /** Where the change source ends now. */
  end(): Promise<End>;
  /** What sync has not applied up to `end` yet (partitions, capture instances), named; empty when it has. */
  behind(end: End): Promise<string[]>;
  /** Why no sync can be waited for (it never applied anything: no offset committed), or null. */
  neverApplied?(): Promise<string | null>;
  close(): Promise<void>;
}

/**
 * Changes already in the change source that sync has not applied yet. The mirror's lag (lag.ts)
 * knows only what a running sync has fetched: a sync that is restarting or still joining its
 * group reports nothing, and a mismatch its next batch would mend looked persistent. A re-check
 * first waits until sync has applied the source up to where it ended when the mismatch was seen.
 * A wait that runs out (sync stopped, or far behind) ends the waiting for the rest of the pass,
 * and a source that cannot be asked leaves the re-checks as they were: verify must not hang on
 * sync, nor fail for its change source.
 */
export class ChangesInFlight<End = unknown> {
  private givenUp = false;

  constructor(
    private readonly probe: ChangeSourceProbe<End>,
    private readonly logger: Logger,
    private readonly waitLimitMs = IN_FLIGHT_WAIT_MS,
  ) {}

  /** For the change source sync reads: Kafka (cdc.kafka) or SQL Server's CDC (cdc.mssql); null without one. */
  static fromConfig(config: Config, sides: { tables: string[]; reader: SourceReader; control: Pool }, logger: Logger, waitLimitMs?: number): ChangesInFlight | null {
    const kafka = config.cdc?.kafka;
    if (kafka) return new ChangesInFlight(KafkaTopicsProbe.fromConfig(kafka), logger, waitLimitMs);
    const mssql = config.cdc?.mssql;
    if (mssql && sides.reader instanceof MssqlReader) {
      const instances = sides.tables.map((t) => mssql.capture_instances[t]).filter((i): i is string => i !== undefined);
      if (instances.length > 0) return new ChangesInFlight(new CaptureInstancesProbe(sides.reader, sides.control, instances), logger, waitLimitMs);
    }
    return null;
  }

  /** A new pass (--watch) waits again: sync may be back. */
  beginPass(): void {
    this.givenUp = false;
  }

  /** Where the change source ends now; null once waiting has been given up. */
  async ends(): Promise<End | null> {
    if (this.givenUp) return null;
    return this.asking(() => this.probe.end());
  }

  /** Waits until sync has applied the source up to `end`, or the wait limit. */
  async waitApplied(end: End | null): Promise<void> {
    if (end === null || this.givenUp) return;
    // A sync that never ran will not apply anything within the wait: each pass with a difference waited it out.
    const never = this.probe.neverApplied ? await this.asking(() => this.probe.neverApplied!()) : null;
    if (never) return this.giveUp(`${never}: re-checks do not wait for sync`);
    // The question failed (asking gave up and said so): waiting on would contradict the warning, for the whole limit.
    if (this.givenUp) return;
    const deadline = Date.now() + this.waitLimitMs;
    for (;;) {
      const behind = await this.asking(() => this.probe.behind(end));
      if (behind === null || behind.length === 0) return;
      if (Date.now() > deadline) {
        this.giveUp(`sync has not applied the changes in ${behind.slice(0, 5).join(', ')} within ${this.waitLimitMs / 1000} s: re-checks no longer wait for it (is sync running?)`);
        return;
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }

  close(): Promise<void> {
    return this.probe.close();
  }

  /** Runs `work`; a failure gives up waiting (the probe connects anew next time). */
  private async asking<T>(work: () => Promise<T>): Promise<T | null> {
    try {
      return await work();
    } catch (e) {
      this.giveUp(`cannot ask ${this.probe.name} how far sync is (${(e as Error).message}): re-checks wait for the mirror's lag only`);
      return null;
    }
  }

  private giveUp(why: string): void {
    if (this.givenUp) return;
    this.givenUp = true;
    this.logger.warn(why);
  }
}

/** How long one re-check waits for sync at most; after that, none waits again in the pass. */
export const IN_FLIGHT_WAIT_MS = 60_000;
const POLL_MS = 250;
