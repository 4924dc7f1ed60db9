import { Counter, Gauge } from 'prom-client';
import { MetricsServer } from '../metrics/index.js';

/** Prometheus metrics of one sync process (`--metrics-port`), in their own registry. */
export class SyncMetrics extends MetricsServer {
  readonly lagMessages = new Gauge({ name: 'membermig_sync_lag_messages', help: 'Events in the partition not yet applied (partition end − next offset)', labelNames: ['topic', 'partition'], registers: [this.registry] });
  readonly lagSeconds = new Gauge({ name: 'membermig_sync_lag_seconds', help: 'Now − source commit time of the last applied event (0 when caught up)', labelNames: ['topic', 'partition'], registers: [this.registry] });
  readonly applied = new Counter({ name: 'membermig_sync_events_applied_total', help: 'Change events applied', labelNames: ['topic'], registers: [this.registry] });
  readonly deadLettered = new Counter({ name: 'membermig_sync_dead_letters_total', help: 'Events recorded as dead letters', labelNames: ['topic'], registers: [this.registry] });
  readonly deletesKept = new Counter({ name: 'membermig_sync_deletes_kept_total', help: "Deletes that kept the row: the shard's updated_at was newer than the delete's before image", labelNames: ['table'], registers: [this.registry] });
  readonly tombstones = new Counter({ name: 'membermig_sync_tombstones_total', help: 'Tombstones skipped', labelNames: ['topic'], registers: [this.registry] });
  readonly connectorRunning = new Gauge({ name: 'membermig_cdc_connector_running', help: '1 while the connector (cdc.kafka.connect) and all its tasks run, 0 otherwise', labelNames: ['connector'], registers: [this.registry] });
  readonly serverDown = new Gauge({ name: 'membermig_sync_shard_server_down', help: '1 while writes to the shard server are paused and retried', labelNames: ['server'], registers: [this.registry] });
}
