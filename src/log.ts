import pino, { type Logger } from 'pino';
import { redactSecrets } from './config/secrets.js';

export type { Logger } from 'pino';

export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof logLevels)[number];

/**
 * Structured logs on stderr (stdout carries only results). Every line passes through
 * redactSecrets, so a secret that slips into a message or an error is still never written.
 */
export function createLogger(level: LogLevel = 'info', destination: NodeJS.WritableStream = process.stderr): Logger {
  return pino(
    {
      level,
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      hooks: { streamWrite: (line: string) => redactSecrets(line) },
    },
    destination as pino.DestinationStream,
  );
}

/** A logger that writes nothing, for library use and tests. */
export const silentLogger: Logger = pino({ level: 'silent' });
