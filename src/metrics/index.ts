import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import { RefusedError } from '../errors.js';
import type { TableProgress } from '../copy/index.js';
import { openControlStore, type ControlStore } from '../store/control.js';
import { collectLeases } from '../store/status-tables.js';
import type { VerifyResult } from '../verify/index.js';

/**
 * Prometheus metrics of long-running commands (`--metrics-port`): each command's metrics in its
 * own registry, served on http://HOST:PORT/metrics while the command runs.
 */
export class MetricsServer {
  readonly registry = new Registry();
  private server: Server | undefined;

  /** Serves /metrics; resolves with the bound port (0 picks a free one). */
  async listen(port: number, host = '127.0.0.1'): Promise<number> {
    this.server = createServer(async (req, res) => {
      if (req.url !== '/metrics') {
        res.writeHead(404).end();
        return;
      }
      try {
        res.writeHead(200, { 'content-type': this.registry.contentType }).end(await this.registry.metrics());
      } catch (e) {
        res.writeHead(500).end((e as Error).message);
      }
    });
    await new Promise<void>((resolve, reject) => {
      // Before anything runs: a port in use or a host that is no address is a bad flag (exit 2), named as such.
      this.server!.once('error', (e: Error) => {
        this.server = undefined;
        reject(new RefusedError(`--metrics-port ${port} --metrics-host ${host}: ${(e as { code?: string }).code === 'EADDRINUSE' ? 'the port is in use' : e.message}`));
      });
      this.server!.listen(port, host, () => resolve());
    });
    const address = this.server.address();
    return typeof address === 'object' && address ? address.port : port;
  }

  async close(): Promise<void> {
    if (this.server) await new Promise<void>((r) => this.server!.close(() => r()));
    this.server = undefined;
  }
}

/**
 * Chunk leases held now, per table, read from the control store when Prometheus scrapes: every
 * worker's leases, not only this process's (what an operator watches to see a job spread out).
 */
class LeaseGauge {
  private store: ControlStore | undefined;
  constructor(registry: Registry, config: Config) {
    const self = this;
    new Gauge({
      name: 'membermig_chunks_leased',
      help: 'Chunks leased right now by any worker (full copy and verify), per table',
      labelNames: ['table'],
      registers: [registry],
      async collect() {
        self.store ??= openControlStore(config, 1);
        this.reset();
        for (const l of await collectLeases(self.store.pool)) this.inc({ table: l.table }, l.chunks);
      },
    });
  }
  async close(): Promise<void> {
    await this.store?.close();
  }
}

/** `membermig full`: rows and chunks copied per table, chunks leased, errors. */
export class FullCopyMetrics extends MetricsServer {
  readonly rows = new Gauge({ name: 'membermig_full_rows_copied', help: 'Rows copied into the shards (done chunks of the job)', labelNames: ['table'], registers: [this.registry] });
  readonly chunksDone = new Gauge({ name: 'membermig_full_chunks_done', help: 'Chunks of the job copied', labelNames: ['table'], registers: [this.registry] });
  readonly chunksTotal = new Gauge({ name: 'membermig_full_chunks_total', help: 'Chunks of the job', labelNames: ['table'], registers: [this.registry] });
  readonly errors = new Counter({ name: 'membermig_full_errors_total', help: 'Errors that stopped a run early, and chunks left failed', registers: [this.registry] });
  private readonly leases: LeaseGauge;
  constructor(config: Config) {
    super();
    this.leases = new LeaseGauge(this.registry, config);
  }

  update(progress: TableProgress[]): void {
    for (const t of progress) {
      this.rows.set({ table: t.table }, t.rowsDone);
      this.chunksDone.set({ table: t.table }, t.chunksDone);
      this.chunksTotal.set({ table: t.table }, t.chunksTotal);
    }
  }

  finish(result: { errors: string[]; left: unknown[] }): void {
    this.errors.inc(result.errors.length + result.left.length);
  }

  override async close(): Promise<void> {
    await super.close();
    await this.leases.close();
  }
}

/** `membermig verify` (above all `--watch`): per table the last pass's differences, rows and chunks; passes; failed chunks. */
export class VerifyMetrics extends MetricsServer {
  readonly passes = new Counter({ name: 'membermig_verify_passes_total', help: 'Verify passes finished', registers: [this.registry] });
  readonly differences = new Gauge({ name: 'membermig_verify_differences', help: 'Differences the last pass found (persistent, not repaired)', labelNames: ['table'], registers: [this.registry] });
  readonly rowsChecked = new Gauge({ name: 'membermig_verify_rows_checked', help: 'Legacy rows the last pass compared', labelNames: ['table'], registers: [this.registry] });
  readonly chunksFailed = new Gauge({ name: 'membermig_verify_chunks_failed', help: 'Chunks the last pass could not check (errors)', labelNames: ['table'], registers: [this.registry] });
  readonly clean = new Gauge({ name: 'membermig_verify_clean', help: '1 when the last pass of the table was clean', labelNames: ['table'], registers: [this.registry] });
  private readonly leases: LeaseGauge;
  constructor(config: Config) {
    super();
    this.leases = new LeaseGauge(this.registry, config);
  }

  update(result: Pick<VerifyResult, 'tables'>): void {
    this.passes.inc();
    for (const t of result.tables) {
      this.differences.set({ table: t.table }, t.differences - t.repaired);
      this.rowsChecked.set({ table: t.table }, t.rowsSource);
      this.chunksFailed.set({ table: t.table }, t.state === 'failed' ? t.chunksTotal - t.chunksChecked : 0);
      this.clean.set({ table: t.table }, t.state === 'clean' ? 1 : 0);
    }
  }

  override async close(): Promise<void> {
    await super.close();
    await this.leases.close();
  }
}
