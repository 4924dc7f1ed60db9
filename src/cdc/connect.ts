/**
 * Kafka Connect's view of the connectors (Debezium) that fill the change topics. Sync measures its
 * lag from the topics, and a stopped connector leaves them quiet: sync is caught up with them while
 * legacy's newer changes wait outside Kafka. Asking Connect is the only way to tell the two apart.
 */

/** Why a quiet topic does not mean a caught-up sync: the one wording of it (gate, status, sync's warning). */
export const QUIET_TOPICS = "legacy's changes do not reach the topics, so sync looks caught up with them";

/** `GET /connectors/NAME/status`, the parts read here. */
export interface ConnectStatusBody {
  connector?: { state?: string; trace?: string };
  tasks?: { id?: number; state?: string; trace?: string }[];
}

export interface ConnectorHealth {
  name: string;
  /**
   * Connect's state of the connector (RUNNING, PAUSED, STOPPED, FAILED, UNASSIGNED, RESTARTING), or
   * what kept it from being read: UNREACHABLE (no answer), MISSING (404), UNREADABLE (not JSON), HTTP nnn.
   */
  state: string;
  /** Each task's state, by task id. */
  tasks: { id: number; state: string }[];
  /** Why changes are not flowing, in words; null when the connector and all its tasks run. */
  problem: string | null;
}

export interface ConnectTarget {
  /** Kafka Connect's REST URL; credentials in it go into a basic Authorization header. */
  url: string;
  connectors: string[];
}

/** The first line of a Java stack trace: the exception and its message. */
function traceHead(trace: string | undefined): string {
  const head = trace?.split('\n', 1)[0]?.trim();
  return head ? `: ${head.length > 300 ? `${head.slice(0, 300)}…` : head}` : '';
}

/**
 * The rule for "changes are flowing": the connector RUNNING with at least one task, every task
 * RUNNING. A task that failed leaves the connector RUNNING, so the tasks are what tell.
 */
export function connectorProblem(name: string, body: ConnectStatusBody): string | null {
  const state = body.connector?.state ?? 'UNKNOWN';
  if (state !== 'RUNNING') return `connector ${name} is ${state}${state === 'FAILED' ? traceHead(body.connector?.trace) : ''}`;
  const tasks = body.tasks ?? [];
  if (tasks.length === 0) return `connector ${name} has no task (not yet started, or no worker took it)`;
  const stopped = tasks.find((t) => t.state !== 'RUNNING');
  if (stopped) return `connector ${name} task ${stopped.id ?? '?'} is ${stopped.state ?? 'UNKNOWN'}${stopped.state === 'FAILED' ? traceHead(stopped.trace) : ''}`;
  return null;
}

/** What brings a connector back, for the messages that name its problem (null: nothing Connect can do). */
export function connectorRemedy(health: ConnectorHealth): string | null {
  const name = encodeURIComponent(health.name);
  if (health.state === 'PAUSED' || health.state === 'STOPPED') return `resume it (PUT /connectors/${name}/resume on Kafka Connect)`;
  if (health.state === 'FAILED' || health.tasks.some((t) => t.state === 'FAILED')) return `restart it (POST /connectors/${name}/restart?includeTasks=true&onlyFailed=true on Kafka Connect)`;
  if (health.state === 'MISSING') return 'create it, or name the connector that fills the topics in cdc.kafka.connect.connectors';
  return null;
}

/** The URL without its credentials, for messages (a Connect URL may carry a password). */
export function connectUrlForDisplay(url: string): string {
  const u = new URL(url);
  return `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
}

/** fetch refuses a URL with credentials: they travel as a basic Authorization header instead. */
function requestOf(url: string): { base: string; headers: Record<string, string> } {
  const u = new URL(url);
  const headers: Record<string, string> = { accept: 'application/json' };
  if (u.username || u.password) {
    headers.authorization = `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}`;
  }
  return { base: connectUrlForDisplay(url), headers };
}

/** Why a request got no answer, in a few words (fetch's own message is only "fetch failed"). */
function unanswered(e: unknown): string {
  const err = e as { name?: string; cause?: { code?: string; message?: string } };
  if (err.name === 'TimeoutError') return 'no answer in time';
  return err.cause?.code ?? err.cause?.message ?? String(e);
}

/** Each connector's health, asked of Kafka Connect; a Connect that does not answer is a problem of each. */
export async function readConnectors(target: ConnectTarget, timeoutMs = 5000, stop?: AbortSignal): Promise<ConnectorHealth[]> {
  const { base, headers } = requestOf(target.url);
  const signal = stop ? AbortSignal.any([stop, AbortSignal.timeout(timeoutMs)]) : AbortSignal.timeout(timeoutMs);
  return Promise.all(
    target.connectors.map(async (name): Promise<ConnectorHealth> => {
      let res: Response;
      try {
        res = await fetch(`${base}/connectors/${encodeURIComponent(name)}/status`, { headers, signal });
      } catch (e) {
        return { name, state: 'UNREACHABLE', tasks: [], problem: `Kafka Connect at ${base} did not answer (${unanswered(e)}), so the state of connector ${name} is unknown` };
      }
      if (!res.ok) await res.body?.cancel();
      if (res.status === 404) return { name, state: 'MISSING', tasks: [], problem: `connector ${name} does not exist on Kafka Connect at ${base}` };
      if (!res.ok) return { name, state: `HTTP ${res.status}`, tasks: [], problem: `Kafka Connect at ${base} answered HTTP ${res.status} for connector ${name}` };
      let body: ConnectStatusBody;
      try {
        body = (await res.json()) as ConnectStatusBody;
      } catch {
        return { name, state: 'UNREADABLE', tasks: [], problem: `Kafka Connect at ${base} answered connector ${name}'s status with something other than JSON` };
      }
      return {
        name,
        state: body.connector?.state ?? 'UNKNOWN',
        tasks: (body.tasks ?? []).map((t, i) => ({ id: t.id ?? i, state: t.state ?? 'UNKNOWN' })),
        problem: connectorProblem(name, body),
      };
    }),
  );
}

/** How often a running sync asks Kafka Connect about the connectors. */
export const CONNECTORS_EVERY_MS = 5000;

interface ConnectorWatchHooks {
  /** A connector's problem appeared, changed or went away (null: running again), or was first seen. */
  changed(health: ConnectorHealth, previous: string | null | undefined): Promise<void>;
  /** Every check's states, changed or not (what is recorded must not depend on one write having landed). */
  checked?(seen: ConnectorHealth[]): Promise<void>;
}

/**
 * Asks Kafka Connect about the connectors now and then every CONNECTORS_EVERY_MS while sync runs,
 * and tells when a connector stops filling its topics or starts again (sync alone would only see
 * quiet topics). Returns the function that stops watching: a request under way is abandoned and
 * nothing is told after it.
 */
export function watchConnectors(target: ConnectTarget, hooks: ConnectorWatchHooks, everyMs = CONNECTORS_EVERY_MS, timeoutMs = 5000): () => void {
  const last = new Map<string, string | null>();
  const stop = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const check = async () => {
    try {
      const seen = await readConnectors(target, timeoutMs, stop.signal);
      for (const health of seen) {
        if (stop.signal.aborted) return;
        const previous = last.get(health.name);
        if (!last.has(health.name) || previous !== health.problem) await hooks.changed(health, previous);
        last.set(health.name, health.problem);
      }
      if (!stop.signal.aborted) await hooks.checked?.(seen);
    } finally {
      if (!stop.signal.aborted) timer = setTimeout(() => void check().catch(() => {}), everyMs).unref();
    }
  };
  void check().catch(() => {});
  return () => {
    stop.abort();
    clearTimeout(timer);
  };
}
