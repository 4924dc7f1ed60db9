import { RefusedError } from '../errors.js';

/** `--metrics-port` text → a port number (0 = any free port); refused otherwise. Apart from the metrics, which load prom-client only when asked for. */
export function parseMetricsPort(text: string): number {
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RefusedError(`--metrics-port ${text}: expected a port number`);
  return port;
}
