import { describe, expect, it } from 'vitest';
import { connectorProblem, connectUrlForDisplay, readConnectors } from './connect.js';

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
