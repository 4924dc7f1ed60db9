import iconv from 'iconv-lite';

/**
 * Non-Unicode SQL Server text (char, varchar, text) from its bytes, decoded as Windows decodes
 * them, which is what SQL Server's own CAST to nvarchar gives.
 *
 * tedious decodes such columns with iconv-lite, whose tables are not Windows': CP936's
 * user-defined areas (0xAAA1-0xAFFE, 0xF8A1-0xFEFE, 0xA140-0xA7A0, rare CJK name characters, which
 * Windows maps to U+E000..U+E765) and characters such as 0xA8BC, and CP1252's 0x81, 0x8D, 0x8F, 0x90
 * and 0x9D (Windows: U+0081..) come out as U+FFFD, and such rows were refused. A byte sequence not
 * valid in the code page still decodes to U+FFFD, which the type map refuses.
 *
 * Node's WHATWG decoders are used where they agree with iconv-lite on every character iconv-lite
 * knows and only add what it lacks (compared over every 1- and 2-byte sequence). Not for CP1252:
 * Node decodes that label as ISO-8859-1 (0x80 as U+0080, not €), so iconv-lite's text gets its five
 * holes filled as Windows fills them; nor for CP932, CP949 and CP1255, where Node's decoders differ
 * from iconv-lite on defined characters; CP950 (WHATWG Big5 adds HKSCS where Windows has
 * user-defined characters) and the DOS code pages (CP437, CP850) keep iconv-lite too.
 */
const WINDOWS_EQUIVALENT: Record<string, string> = {
  CP874: 'windows-874',
  CP936: 'gbk',
  CP1250: 'windows-1250',
  CP1251: 'windows-1251',
  CP1253: 'windows-1253',
  CP1254: 'windows-1254',
  CP1256: 'windows-1256',
  CP1257: 'windows-1257',
  CP1258: 'windows-1258',
};

const decoders = new Map<string, InstanceType<typeof TextDecoder>>();

/** The text of `bytes` in code page `codepage` ('CP936', ...), as Windows reads it where Node can tell. */
export function decodeCodepage(bytes: Buffer, codepage: string): string {
  const name = codepage.toUpperCase();
  // One UTF-16 unit per byte in CP1252, so a U+FFFD's offset is its byte's.
  if (name === 'CP1252') return iconv.decode(bytes, name).replace(/\uFFFD/g, (_, at: number) => (CP1252_HOLES.has(bytes[at]!) ? String.fromCharCode(bytes[at]!) : '\uFFFD'));
  const label = WINDOWS_EQUIVALENT[name];
  if (label === undefined) return iconv.decode(bytes, codepage);
  let decoder = decoders.get(label);
  if (!decoder) decoders.set(label, (decoder = new TextDecoder(label)));
  return decoder.decode(bytes);
}

/** The bytes CP1252 leaves undefined, which Windows maps to the C1 controls of the same number. */
const CP1252_HOLES = new Set([0x81, 0x8d, 0x8f, 0x90, 0x9d]);
