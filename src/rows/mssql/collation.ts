/**
 * SQL Server collations, as far as membermig needs them: which code page a non-Unicode
 * (char/varchar/text) column is stored in, and which utf8mb4 collation on the target keeps every
 * key the source keeps apart. Windows collations look like Chinese_PRC_CI_AS or
 * Latin1_General_100_CI_AS_SC_UTF8; SQL collations like SQL_Latin1_General_CP1_CI_AS.
 */

export interface CollationInfo {
  name: string;
  /** iconv code page of non-Unicode data ('CP936', 'utf-8', ...), undefined when not known here. */
  codepage: string | undefined;
  caseSensitive: boolean;
  accentSensitive: boolean;
  /** _KS, _WS or _VSS: kana, width or variation selectors tell keys apart (third-level differences in UCA). */
  kanaWidthOrVariantSensitive: boolean;
  /** _BIN or _BIN2: ordered by code point / bytes. */
  binary: boolean;
  utf8: boolean;
}

/** Which server family the shard DDL is written for: collation names differ. */
export type TargetFlavor = 'mysql' | 'mariadb';

/** Windows collation name prefixes → code page of non-Unicode data (the LCID's ANSI code page). */
const CODEPAGE_BY_PREFIX: [string, string][] = [
  ['Chinese_PRC', 'CP936'],
  ['Chinese_Simplified', 'CP936'],
  ['Chinese_Taiwan', 'CP950'],
  ['Chinese_Traditional', 'CP950'],
  ['Chinese_Hong_Kong', 'CP950'],
  ['Japanese', 'CP932'],
  ['Korean', 'CP949'],
  ['Thai', 'CP874'],
  ['Vietnamese', 'CP1258'],
  ['Arabic', 'CP1256'],
  ['Urdu', 'CP1256'],
  ['Persian', 'CP1256'],
  ['Hebrew', 'CP1255'],
  ['Turkish', 'CP1254'],
  ['Azeri_Latin', 'CP1254'],
  ['Greek', 'CP1253'],
  ['Cyrillic', 'CP1251'],
  ['Ukrainian', 'CP1251'],
  ['Macedonian', 'CP1251'],
  ['Serbian_Cyrillic', 'CP1251'],
  ['Bosnian_Cyrillic', 'CP1251'],
  ['Kazakh', 'CP1251'],
  ['Estonian', 'CP1257'],
  ['Latvian', 'CP1257'],
  ['Lithuanian', 'CP1257'],
  ['Czech', 'CP1250'],
  ['Polish', 'CP1250'],
  ['Hungarian', 'CP1250'],
  ['Croatian', 'CP1250'],
  ['Slovak', 'CP1250'],
  ['Slovenian', 'CP1250'],
  ['Romanian', 'CP1250'],
  ['Albanian', 'CP1250'],
  ['Serbian_Latin', 'CP1250'],
  ['Bosnian_Latin', 'CP1250'],
  ['Latin1_General', 'CP1252'],
  ['French', 'CP1252'],
  ['German', 'CP1252'],
  ['Modern_Spanish', 'CP1252'],
  ['Traditional_Spanish', 'CP1252'],
  ['Danish', 'CP1252'],
  ['Finnish_Swedish', 'CP1252'],
  ['Icelandic', 'CP1252'],
  ['Norwegian', 'CP1252'],
];

/** SQL_ collations name their code page: CP1 is 1252, the others are literal (CP437, CP1250, ...). */
function sqlCollationCodepage(name: string): string | undefined {
  const m = /_CP(\d+)_/i.exec(name) ?? /_Cp(\d+)_/.exec(name);
  if (m) return m[1] === '1' ? 'CP1252' : `CP${m[1]}`;
  const special = /^SQL_Latin1_General_(\d{4})_BIN$/i.exec(name);
  return special ? `CP${special[1]}` : undefined;
}

export function parseCollation(name: string): CollationInfo {
  const parts = name.split('_').map((p) => p.toUpperCase());
  const utf8 = parts.includes('UTF8');
  const binary = parts.includes('BIN') || parts.includes('BIN2');
  let codepage: string | undefined;
  if (utf8) codepage = 'utf-8';
  else if (/^SQL_/i.test(name)) codepage = sqlCollationCodepage(name);
  else codepage = CODEPAGE_BY_PREFIX.find(([prefix]) => name.toLowerCase().startsWith(prefix.toLowerCase() + '_'))?.[1];
  return {
    name,
    codepage,
    binary,
    utf8,
    caseSensitive: binary || parts.includes('CS'),
    accentSensitive: binary || !parts.includes('AI'),
    kanaWidthOrVariantSensitive: parts.includes('KS') || parts.includes('WS') || parts.includes('VSS'),
  };
}

/**
 * The utf8mb4 collation for a column with this source collation. The target must tell apart at
 * least what the source tells apart, or keys unique in SQL Server collide in MySQL: accent-sensitive
 * sources never get MySQL 8's default accent-insensitive collation, and binary or case-sensitive
 * ones get utf8mb4_bin, which merges nothing.
 */
export function targetCollation(info: CollationInfo, flavor: TargetFlavor = 'mysql'): string {
  // MySQL's _as_ci compares two UCA levels; kana and width differ at the third, so はは = ハハ there.
  if (info.binary || info.caseSensitive || info.kanaWidthOrVariantSensitive) return 'utf8mb4_bin';
  // Turkish and Azeri fold i with İ and ı with I; the root collation folds i with I, merging 'kim' and 'KIM'.
  if (/^(Turkish|Azeri)_/i.test(info.name)) return 'utf8mb4_bin';
  const family = flavor === 'mysql' ? 'utf8mb4_0900' : 'utf8mb4_uca1400';
  // Accent-insensitive only where the source is the general (root-like) one: in a language's own
  // collation a letter like Swedish å or Spanish ñ is a letter, not a with an accent, and stays apart.
  const general = /^(SQL_)?Latin1_General_/i.test(info.name);
  return info.accentSensitive || !general ? `${family}_as_ci` : `${family}_ai_ci`;
}

/** Collation names go into T-SQL (COLLATE x) unquoted: only catalog-shaped names are accepted. */
export function assertCollationName(name: string): string {
  if (!/^[A-Za-z0-9_]+$/.test(name)) throw new Error(`unexpected collation name "${name}"`);
  return name;
}
