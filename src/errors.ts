/** Exit codes of the command-line contract (design.md, "Command line"). */
export const ExitCode = {
  /** Done and clean. */
  Ok: 0,
  /** The job ran but found or left problems. */
  Problems: 1,
  /** Bad usage or bad config, refused before any write. */
  Refused: 2,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/**
 * An error that must stop a command before it connects or writes anything:
 * bad config, bad flags, a source table that does not match what the config says.
 * The CLI maps it to exit code 2 and prints only its message (no stack).
 */
export class RefusedError extends Error {
  override name = 'RefusedError';
  constructor(message: string, readonly problems: string[] = [message]) {
    super(message);
  }
}

/** One problem found in a config file, located by file, line:column and YAML path. */
export interface ConfigProblem {
  file: string;
  line?: number;
  column?: number;
  path: string;
  message: string;
}

export function formatConfigProblem(p: ConfigProblem): string {
  const where = p.line !== undefined ? `${p.file}:${p.line}:${p.column ?? 1}` : p.file;
  return p.path ? `${where} ${p.path}: ${p.message}` : `${where}: ${p.message}`;
}

export class ConfigError extends RefusedError {
  override name = 'ConfigError';
  constructor(readonly configProblems: ConfigProblem[]) {
    super(
      configProblems.length === 1
        ? formatConfigProblem(configProblems[0]!)
        : `${configProblems.length} problems in the config:\n` + configProblems.map((p) => '  ' + formatConfigProblem(p)).join('\n'),
      configProblems.map(formatConfigProblem),
    );
  }
}

/**
 * A failure to reach or use a server, with the server named: drivers name a host at most
 * ("connect ECONNREFUSED 127.0.0.1:3399") or nothing ("Access denied for user ..."). The driver's
 * code is kept, so retry rules still tell a transient failure from a lasting one.
 */
export function namedFailure(what: string, e: unknown): unknown {
  if (!(e instanceof Error) || e instanceof RefusedError) return e;
  return Object.assign(new Error(`${what}: ${e.message}`, { cause: e }), { code: (e as { code?: string }).code });
}
