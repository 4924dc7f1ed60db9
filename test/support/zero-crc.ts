import { crc32 } from 'node:zlib';

/**
 * A text of 'a's and 'b's whose bytes, as `bytesOf` places it in a row, have CRC-32 0. CRC-32 is
 * affine over GF(2): turning the 'a' at position i into 'b' changes the CRC by the same bits
 * whatever else the text holds, so the positions to turn are those whose changes XOR to the CRC
 * of the all-'a' text (found by Gaussian elimination over the 32 CRC bits).
 */
export function zeroCrcText(bytesOf: (text: string) => Buffer, length = 64): string {
  const crcOf = (text: string) => crc32(bytesOf(text)) >>> 0;
  const base = 'a'.repeat(length);
  const baseCrc = crcOf(base);
  // pivots[bit]: a CRC change whose highest set bit is `bit`, and the positions that make it.
  const pivots: ({ change: number; positions: bigint } | undefined)[] = [];
  for (let i = 0; i < length; i++) {
    let change = (crcOf(base.slice(0, i) + 'b' + base.slice(i + 1)) ^ baseCrc) >>> 0;
    let positions = 1n << BigInt(i);
    for (let bit = 31; bit >= 0 && change !== 0; bit--) {
      if (((change >>> bit) & 1) === 0) continue;
      const pivot = pivots[bit];
      if (!pivot) {
        pivots[bit] = { change, positions };
        break;
      }
      change = (change ^ pivot.change) >>> 0;
      positions ^= pivot.positions;
    }
  }
  let rest = baseCrc;
  let positions = 0n;
  for (let bit = 31; bit >= 0; bit--) {
    if (((rest >>> bit) & 1) === 0) continue;
    const pivot = pivots[bit];
    if (!pivot) throw new Error('zeroCrcText: the positions do not span every CRC bit; try a longer text');
    rest = (rest ^ pivot.change) >>> 0;
    positions ^= pivot.positions;
  }
  const text = [...base].map((c, i) => ((positions >> BigInt(i)) & 1n ? 'b' : c)).join('');
  if (crcOf(text) !== 0) throw new Error('zeroCrcText: no text found');
  return text;
}
