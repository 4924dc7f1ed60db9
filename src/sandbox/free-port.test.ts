import { describe, expect, it } from 'vitest';
import { freePort } from './mariadb.js';

describe('freePort', () => {
  // The OS offers a just-closed port again: 300 bare probes here held 3-7 repeats, and once Kafka's
  // broker and controller got the same port and the test run could not start.
  it('never hands out the same port twice in a process', async () => {
    const ports: number[] = [];
    for (let i = 0; i < 300; i++) ports.push(await freePort());
    expect(new Set(ports).size).toBe(ports.length);
  });
});
