import { describe, expect, it } from 'vitest';
import { crc32, murmur3, murmur3Bytes } from './hash.js';

describe('murmur3 (x86_32) against the published test vectors', () => {
  const vectors: [string, number, number][] = [
    ['', 0, 0],
    ['', 1, 0x514e28b7],
    ['', 0xffffffff, 0x81f16f39],
    ['\0\0\0\0', 0, 0x2362f9de],
    ['aaaa', 0x9747b28c, 0x5a97808a],
    ['aaa', 0x9747b28c, 0x283e0130],
    ['aa', 0x9747b28c, 0x5d211726],
    ['a', 0x9747b28c, 0x7fa09ea6],
    ['abcd', 0x9747b28c, 0xf0478627],
    ['abc', 0x9747b28c, 0xc84a62dd],
    ['ab', 0x9747b28c, 0x74875592],
    ['Hello, world!', 0x9747b28c, 0x24884cba],
    ['ππππππππ', 0x9747b28c, 0xd58063c1],
    ['The quick brown fox jumps over the lazy dog', 0, 0x2e4ff723],
  ];
  it.each(vectors)('murmur3(%j, seed %i)', (text, seed, expected) => {
    expect(murmur3(text, seed)).toBe(expected);
    expect(murmur3Bytes(Buffer.from(text, 'utf8'), seed)).toBe(expected);
  });
});

describe('crc32', () => {
  it('matches the IEEE check value and zlib', async () => {
    expect(crc32('123456789')).toBe(0xcbf43926);
    const zlib = await import('node:zlib');
    for (const s of ['', 'a', '9007199254740993', '张伟', '😀 emoji', 'x'.repeat(1000)]) {
      expect(crc32(s)).toBe((zlib as unknown as { crc32(d: string): number }).crc32(Buffer.from(s, 'utf8') as unknown as string));
    }
  });
});
