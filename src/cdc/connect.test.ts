import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { connectorProblem, connectorRemedy, connectUrlForDisplay, readConnectors, watchConnectors, type ConnectorHealth } from './connect.js';

describe('connectorProblem: is a connector filling its topics?', () => {
  it('only when the connector and every one of its tasks run', () => {
    expect(connectorProblem('legacy', { connector: { state: 'RUNNING' }, tasks: [{ id: 0, state: 'RUNNING' }, { id: 1, state: 'RUNNING' }] })).toBeNull();
    expect(connectorProblem('legacy', { connector: { state: 'PAUSED' }, tasks: [{ id: 0, state: 'PAUSED' }] })).toBe('connector legacy is PAUSED');
    expect(connectorProblem('legacy', { connector: { state: 'STOPPED' }, tasks: [] })).toBe('connector legacy is STOPPED');
    expect(connectorProblem('legacy', {})).toBe('connector legacy is UNKNOWN');
  });

  it('a failed task leaves the connector RUNNING: the task tells, with the first line of its trace', () => {
    const trace = 'org.apache.kafka.connect.errors.ConnectException: An exception occurred in the change event producer.\n\tat io.debezium...';
    expect(connectorProblem('legacy', { connector: { state: 'RUNNING' }, tasks: [{ id: 0, state: 'RUNNING' }, { id: 1, state: 'FAILED', trace }] })).toBe(
      'connector legacy task 1 is FAILED: org.apache.kafka.connect.errors.ConnectException: An exception occurred in the change event producer.',
    );
    expect(connectorProblem('legacy', { connector: { state: 'FAILED', trace: 'java.lang.IllegalStateException: boom\n\tat x' }, tasks: [] })).toBe('connector legacy is FAILED: java.lang.IllegalStateException: boom');
    expect(connectorProblem('legacy', { connector: { state: 'RUNNING' }, tasks: [{ id: 0, state: 'UNASSIGNED' }] })).toBe('connector legacy task 0 is UNASSIGNED');
  });

  it('a connector with no task yet is not filling anything', () => {
    expect(connectorProblem('legacy', { connector: { state: 'RUNNING' }, tasks: [] })).toBe('connector legacy has no task (not yet started, or no worker took it)');
  });
});

describe('connectorRemedy: what brings a connector back', () => {
  const health = (state: string, tasks: string[] = []) => ({ name: 'legacy/x', state, tasks: tasks.map((t, id) => ({ id, state: t })), problem: 'p' });
  it('resume a paused or stopped one, restart a failed one or a failed task, create a missing one; nothing for an unreachable Connect', () => {
    expect(connectorRemedy(health('PAUSED'))).toBe('resume it (PUT /connectors/legacy%2Fx/resume on Kafka Connect)');
    expect(connectorRemedy(health('STOPPED'))).toBe('resume it (PUT /connectors/legacy%2Fx/resume on Kafka Connect)');
    expect(connectorRemedy(health('RUNNING', ['RUNNING', 'FAILED']))).toBe('restart it (POST /connectors/legacy%2Fx/restart?includeTasks=true&onlyFailed=true on Kafka Connect)');
    expect(connectorRemedy(health('MISSING'))).toBe('create it, or name the connector that fills the topics in cdc.kafka.connect.connectors');
    expect(connectorRemedy(health('UNREACHABLE'))).toBeNull();
  });
});

describe('Kafka Connect URLs', () => {
  it('are shown without their credentials', () => {
    expect(connectUrlForDisplay('https://ops:s3cret@connect.internal:8083/')).toBe('https://connect.internal:8083');
    expect(connectUrlForDisplay('http://connect:8083/kafka-connect')).toBe('http://connect:8083/kafka-connect');
  });

  it('a Connect that does not answer makes each connector unknown, never a secret in the words', async () => {
    const [health] = await readConnectors({ url: 'http://ops:s3cret-pw@127.0.0.1:2', connectors: ['legacy'] }, 2000);
    expect(health).toEqual({ name: 'legacy', state: 'UNREACHABLE', tasks: [], problem: 'Kafka Connect at http://127.0.0.1:2 did not answer (ECONNREFUSED), so the state of connector legacy is unknown' });
  });
});

/**
 * What membermig sends to Kafka Connect's REST API (the real Connect of the test services has no
 * auth and no path prefix; test/sync.test.ts runs against it): a local HTTP server that answers as
 * Connect does and keeps the requests it got.
 */
describe('requests to Kafka Connect', () => {
  let server: Server | undefined;
  afterEach(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

  async function connectLike(answer: (req: IncomingMessage) => { status: number; body: string; delayMs?: number }): Promise<{ url: string; seen: IncomingMessage[] }> {
    const seen: IncomingMessage[] = [];
    server = createServer((req, res) => {
      seen.push(req);
      const a = answer(req);
      setTimeout(() => res.writeHead(a.status, { 'content-type': 'application/json' }).end(a.body), a.delayMs ?? 0);
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
  }

  const running = JSON.stringify({ connector: { state: 'RUNNING' }, tasks: [{ id: 0, state: 'RUNNING' }] });

  it('credentials go as basic auth (decoded), the path prefix is kept, names are encoded', async () => {
    const { url, seen } = await connectLike(() => ({ status: 200, body: running }));
    const withAuth = url.replace('http://', 'http://ops:p%40ss@') + '/kafka-connect/';
    expect(await readConnectors({ url: withAuth, connectors: ['legacy/members'] })).toEqual([{ name: 'legacy/members', state: 'RUNNING', tasks: [{ id: 0, state: 'RUNNING' }], problem: null }]);
    expect(seen[0]!.url).toBe('/kafka-connect/connectors/legacy%2Fmembers/status');
    expect(seen[0]!.headers.authorization).toBe(`Basic ${Buffer.from('ops:p@ss').toString('base64')}`);
  });

  it('an error answer or one that is not JSON is a problem naming the URL without its credentials', async () => {
    const { url } = await connectLike((req) => (req.url!.includes('busy') ? { status: 409, body: '{"error_code":409}' } : { status: 200, body: '<html>' }));
    const withAuth = url.replace('http://', 'http://ops:s3cret@');
    const [busy, html] = await readConnectors({ url: withAuth, connectors: ['busy', 'html'] });
    expect(busy).toEqual({ name: 'busy', state: 'HTTP 409', tasks: [], problem: `Kafka Connect at ${url} answered HTTP 409 for connector busy` });
    expect(html!.problem).toBe(`Kafka Connect at ${url} answered connector html's status with something other than JSON`);
  });

  it('a Connect slower than the timeout is a problem, not a wait', async () => {
    const { url } = await connectLike(() => ({ status: 200, body: running, delayMs: 2000 }));
    const t0 = Date.now();
    expect((await readConnectors({ url, connectors: ['legacy'] }, 300))[0]!.problem).toBe(`Kafka Connect at ${url} did not answer (no answer in time), so the state of connector legacy is unknown`);
    expect(Date.now() - t0).toBeLessThan(1500);
  });

  it('the watch tells each change once, and nothing after it is stopped', async () => {
    let state = 'RUNNING';
    let delayMs = 0;
    const { url } = await connectLike(() => ({ status: 200, body: JSON.stringify({ connector: { state }, tasks: [{ id: 0, state }] }), delayMs }));
    const told: [string | null, string | null | undefined][] = [];
    const stop = watchConnectors({ url, connectors: ['legacy'] }, { changed: async (h: ConnectorHealth, previous) => void told.push([h.problem, previous]) }, 50, 2000);
    const until = async (n: number) => {
      for (const deadline = Date.now() + 5000; told.length < n; ) {
        if (Date.now() > deadline) throw new Error(`told ${JSON.stringify(told)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    await until(1);
    state = 'PAUSED';
    await until(2);
    state = 'RUNNING';
    await until(3);
    await new Promise((r) => setTimeout(r, 200)); // unchanged: told nothing more
    expect(told).toEqual([
      [null, undefined],
      ['connector legacy is PAUSED', null],
      [null, 'connector legacy is PAUSED'],
    ]);
    // A check under way when the watch stops tells nothing.
    state = 'FAILED';
    delayMs = 300;
    await new Promise((r) => setTimeout(r, 100));
    stop();
    await new Promise((r) => setTimeout(r, 500));
    expect(told).toHaveLength(3);
  });
});
