import { describe, expect, it } from 'vitest';
import { registerSecret } from '../config/secrets.js';
import { renderJson, renderTable } from './render.js';

describe('renderJson', () => {
  it('scrubs secrets from strings and stays valid JSON when a secret is all digits', () => {
    registerSecret('4096');
    const text = renderJson({ shards: { count: 4096 }, url: 'mysql://app:4096@db:3306/x', note: 'pw 4096 here' });
    const doc = JSON.parse(text);
    expect(doc.shards.count).toBe(4096); // a number is config data, not the secret
    expect(doc.url).toBe('mysql://app:***@db:3306/x');
    expect(doc.note).toBe('pw *** here');
    expect(text).not.toContain('4096"');
  });
});

describe('renderTable', () => {
  it('keeps its columns aligned when a cell held a secret (scrubbed before it is measured)', () => {
    registerSecret('S3cr3tPa55!');
    const lines = renderTable(['server', 'dc', 'shards'], [['shard-a', 'S3cr3tPa55!', 8], ['shard-b', 'dc2', 8]]).split('\n');
    expect(lines[2]).toBe('shard-a  ***  8');
    expect(lines[3]).toBe('shard-b  dc2  8');
  });
});
