import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.js';
import { loadConfig, parseConfig } from './load.js';
import { redactSecrets, registerSecret } from './secrets.js';

const VALID = `control: { url: "mysql://root@127.0.0.1:3306/membermig_control" }
source: { kind: mssql, url: "mssql://sa:pw@127.0.0.1:1433/MemberDB" }
servers:
  dc1-a: { primary: "mysql://app@10.0.0.5:3306", replicas: [], dc: dc1 }
  dc1-b: { primary: "mysql://app@10.0.0.6:3306", dc: dc1 }
shards:
  count: 1024
  function: crc32
  database: "member_{shard:04}"
  placement:
    - { shards: "0-511", server: dc1-a }
    - { shards: "512-1023", server: dc1-b }
tables:
  member:
    source: dbo.Member
    target: member
    shard_key: member_id
cdc:
  kafka: { brokers: ["127.0.0.1:9092"], topic: "legacy.MemberDB.dbo.Member", group: membermig-sync }
`;

/** The one message a config text is rejected with. */
function rejection(text: string, env: NodeJS.ProcessEnv = {}): string {
  try {
    parseConfig(text, 'membermig.yaml', env);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('config was accepted');
}

describe('config loading', () => {
  it('accepts the contract example and fills defaults', () => {
    const config = parseConfig(VALID, 'membermig.yaml', {});
    expect(config.shards.count).toBe(1024);
    expect(config.servers['dc1-b']!.replicas).toEqual([]);
    expect(config.copy.chunk_rows).toBe(50_000);
    expect(config.rows.on_unrepresentable).toBe('fail');
  });

  it('names file, line:column and YAML path of an overlapping placement', () => {
    const text = VALID.replace('"512-1023"', '"500-1023"');
    expect(rejection(text)).toContain('membermig.yaml:12:17 shards.placement[1].shards: shards 500-1023 overlap 0-511 (server dc1-a)');
  });

  it('refuses what the YAML library refuses (an alias bomb) as bad config naming the file, and says what a huge number is', () => {
    const bomb = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]', ...Array.from({ length: 10 }, (_, i) => `a${i + 1}: &a${i + 1} [${Array(10).fill(`*a${i}`).join(', ')}]`)].join('\n');
    expect(() => parseConfig(`${VALID}\n${bomb}\n`, 'bomb.yaml')).toThrow(ConfigError);
    expect(() => parseConfig(`${VALID}\n${bomb}\n`, 'bomb.yaml')).toThrow(/bomb\.yaml: YAML: Excessive alias count/);
    expect(() => parseConfig(VALID.replace('count: 1024', 'count: 1e400'), 'huge.yaml')).toThrow(/shards\.count.*got number Infinity/);
  });

  it('rejects a gap in the placement', () => {
    expect(rejection(VALID.replace('"512-1023"', '"600-1023"'))).toContain('shards.placement: shards 512-599 are not placed on any server');
  });

  it('rejects placement past the shard count', () => {
    expect(rejection(VALID.replace('"512-1023"', '"512-2047"'))).toContain('shards 512-2047 go past the last shard 1023');
  });

  it('an unknown server read through ${NAME} is named by its reference, not shown as ***', () => {
    const msg = rejection(VALID.replace('server: dc1-b', 'server: "${MM_TEST_PLACE}"'), { MM_TEST_PLACE: 'dc9-z' });
    expect(msg).toMatch(/shards\.placement\[1\]\.server: unknown server from \$\{MM_TEST_PLACE\} \(servers: dc1-a, dc1-b\)/);
    expect(msg).not.toContain('dc9-z');
  });

  it('rejects an unknown server with the known ones listed', () => {
    expect(rejection(VALID.replace('server: dc1-b }', 'server: dc9 }'))).toMatch(
      /membermig\.yaml:12:\d+ shards\.placement\[1\]\.server: unknown server "dc9" \(servers: dc1-a, dc1-b\)/,
    );
  });

  it('rejects unknown keys at their own line', () => {
    const msg = rejection(VALID.replace('    shard_key: member_id\n', '    shard_key: member_id\n    shardkey: x\n'));
    expect(msg).toBe('membermig.yaml:18:5 tables.member.shardkey: unknown key "shardkey"');
  });

  it('rejects a wrong type, naming what was expected', () => {
    expect(rejection(VALID.replace('count: 1024', 'count: "many"'))).toContain('membermig.yaml:7:10 shards.count: expected number, got string "many"');
    expect(rejection(VALID.replace('count: 1024', 'count: 1000000'))).toContain('membermig.yaml:7:10 shards.count: at most 65536 shards (each one is a database on its server)');
  });

  it('never echoes a value read through ${NAME} in an error: it may be a secret put in the wrong place', () => {
    const msg = rejection(VALID.replace('count: 1024', 'count: "${OTHER_PW}"'), { OTHER_PW: 'Hunter2Pass' });
    expect(msg).toContain('shards.count: expected number, got string from ${OTHER_PW}');
    expect(msg).not.toContain('Hunter2Pass');
  });

  it('a value that is none of the choices says what is expected, not "Invalid input"', () => {
    const autoOrCount = 'expected a positive integer or "auto"';
    for (const bad of ['lots', '0', '2.5', 'AUTO']) {
      expect(rejection(`${VALID}copy: { workers: ${bad} }\n`)).toBe(`membermig.yaml:20:18 copy.workers: ${autoOrCount}`);
      expect(rejection(`${VALID}verify: { chunk_rows: ${bad} }\n`)).toBe(`membermig.yaml:20:23 verify.chunk_rows: ${autoOrCount}`);
    }
    expect(rejection(VALID.replace('topic: "legacy.MemberDB.dbo.Member"', 'topic: 5'))).toContain('cdc.kafka.topic: expected a topic name or a list of topic names');
    for (const bad of ['true', '-5']) expect(rejection(VALID.replace('"512-1023"', bad))).toContain('shards.placement[1].shards: expected a range like "0-511" or a single shard number');
  });

  it('rejects a database pattern without {shard}', () => {
    expect(rejection(VALID.replace('member_{shard:04}', 'member'))).toContain('shards.database: the database pattern must contain {shard}');
  });

  it("refuses shard databases that are the control store's or a legacy database, or too long for MySQL", () => {
    const control = VALID.replace('membermig_control', 'member_0000');
    expect(rejection(control)).toContain(`shards.database: shard 0's database "member_0000" is the control store's database (control.url)`);
    const legacy = VALID.replace('kind: mssql, url: "mssql://sa:pw@127.0.0.1:1433/MemberDB"', 'kind: mysql, url: "mysql://root@127.0.0.1:3306/legacy"')
      .replace('source: dbo.Member', 'source: member_0007.member');
    expect(rejection(legacy)).toContain(`shards.database: shard 7's database "member_0007" is a legacy database (tables.member.source)`);
    expect(rejection(VALID.replace('member_{shard:04}', `${'x'.repeat(60)}_{shard:04}`))).toContain(`is 65 characters; MySQL database names have at most 64`);
    expect(rejection(VALID.replace('member_{shard:04}', 'member_{shard:99999999}'))).toContain('a width above 10 makes no sense');
  });

  it('rejects bad URLs and a bad shard function', () => {
    expect(rejection(VALID.replace('mysql://app@10.0.0.6:3306', 'not a url'))).toContain('servers.dc1-b.primary: expected a URL like mysql://');
    expect(rejection(VALID.replace('function: crc32', 'function: md5'))).toContain('shards.function: expected one of "mod", "crc32", "murmur3"');
    const connect = (c: string) => VALID.replace('group: membermig-sync }', `group: membermig-sync, connect: ${c} }`);
    expect(rejection(connect('{ url: "kafka://connect:8083", connectors: [legacy] }'))).toContain('cdc.kafka.connect.url: expected a URL like http://connect-host:8083');
    expect(rejection(connect('{ url: "http://connect:8083", connectors: [] }'))).toContain('cdc.kafka.connect.connectors');
    expect(parseConfig(connect('{ url: "https://ops:pw@connect:8083", connectors: [legacy] }'), 'membermig.yaml', {}).cdc?.kafka?.connect).toEqual({ url: 'https://ops:pw@connect:8083', connectors: ['legacy'] });
  });

  it('rejects duplicate table names, sources and targets', () => {
    const dupKey = VALID.replace('cdc:', '  member:\n    source: dbo.Other\n    target: other\n    shard_key: id\ncdc:');
    expect(rejection(dupKey)).toMatch(/YAML syntax: Map keys must be unique/);
    const dupTarget = VALID.replace('cdc:', '  other:\n    source: dbo.Other\n    target: member\n    shard_key: id\ncdc:');
    expect(rejection(dupTarget)).toContain('tables.other.target: target member is already written by table "member"');
  });

  it('reports YAML syntax errors with their position', () => {
    expect(rejection('control: { url: "x"\nsource: [')).toMatch(/membermig\.yaml:\d+:\d+: YAML syntax: /);
  });

  it('interpolates ${ENV} and ${file:PATH} and registers them as secrets', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mm-cfg-'));
    const secretFile = join(dir, 'dc1a');
    writeFileSync(secretFile, 'file-secret-s3cr3t\n');
    const text = VALID.replace('mysql://app@10.0.0.5:3306', `mysql://app:\${file:${secretFile}}@10.0.0.5:3306`).replace(
      '"mssql://sa:pw@127.0.0.1:1433/MemberDB"',
      '"${MEMBERMIG_SOURCE_URL}"',
    );
    const config = parseConfig(text, 'membermig.yaml', { MEMBERMIG_SOURCE_URL: 'mssql://sa:env-secret-pw@10.1.1.1:1433/MemberDB' });
    expect(config.servers['dc1-a']!.primary).toBe('mysql://app:file-secret-s3cr3t@10.0.0.5:3306');
    expect(config.source.url).toBe('mssql://sa:env-secret-pw@10.1.1.1:1433/MemberDB');
    expect(redactSecrets('failed: mysql://app:file-secret-s3cr3t@10.0.0.5 and env-secret-pw')).toBe('failed: mysql://app:***@10.0.0.5 and ***');
  });

  it("a URL's password written in the YAML as it is is a secret too: scrubbed where a message quotes it alone", () => {
    parseConfig(VALID.replace('mysql://app@10.0.0.5:3306', 'mysql://app:Lit3ral-in-yaml@10.0.0.5:3306'), 'membermig.yaml');
    expect(redactSecrets("Access denied for user 'app' (password 'Lit3ral-in-yaml')")).toBe("Access denied for user 'app' (password '***')");
  });

  it('a secret holding a shorter one is scrubbed whole, whichever was registered first', () => {
    registerSecret('k3y');
    registerSecret('long-k3y-value');
    expect(redactSecrets('auth long-k3y-value failed; k3y')).toBe('auth *** failed; ***');
  });

  it('a secret with %, /, @, # or : in a URL reaches the server as it is', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mm-cfg-'));
    const secretFile = join(dir, 'odd');
    const password = 'p%41a/s@s#w:rd?"x';
    writeFileSync(secretFile, `${password}\n`);
    const text = VALID.replace('mysql://app@10.0.0.5:3306', `mysql://app:\${file:${secretFile}}@10.0.0.5:3306`);
    const url = new URL(parseConfig(text, 'membermig.yaml').servers['dc1-a']!.primary);
    expect(url.hostname).toBe('10.0.0.5');
    expect(decodeURIComponent(url.password)).toBe(password);
    // Scrubbed as it is, percent-encoded, and escaped in JSON.
    expect(redactSecrets(`${password} ${encodeURIComponent(password)} ${JSON.stringify({ p: password })}`)).toBe('*** *** {"p":"***"}');
  });

  it('every value read through a reference is a secret, a host or a port too; digits inside a longer number stay', () => {
    const text = VALID.replace('mysql://app@10.0.0.5:3306', 'mysql://app@${MM_TEST_HOST}:${MM_TEST_PORT}').replace('dc: dc1', 'dc: "${MM_TEST_DC}"');
    const config = parseConfig(text, 'membermig.yaml', { MM_TEST_HOST: 'db-host-7.internal', MM_TEST_PORT: '3377', MM_TEST_DC: 'Hunter3Pass' });
    expect(config.servers['dc1-a']!.primary).toBe('mysql://app@db-host-7.internal:3377');
    expect(config.servers['dc1-a']!.dc).toBe('Hunter3Pass');
    expect(redactSecrets('{"rows": 133770, "at": "db-host-7.internal:3377", "dc": "Hunter3Pass"}')).toBe('{"rows": 133770, "at": "***:***", "dc": "***"}');
  });

  it('a short value read through a reference is scrubbed where it stands as a word; short digits stay', () => {
    const text = VALID.replace('mysql://app@10.0.0.5:3306', 'mysql://app:${MM_TEST_SHORT_PW}@10.0.0.5:${MM_TEST_PORT}').replace('dc: dc1', 'dc: "${MM_TEST_SHORT_DC}"');
    const config = parseConfig(text, 'membermig.yaml', { MM_TEST_SHORT_PW: 'q7', MM_TEST_SHORT_DC: 'zx9', MM_TEST_PORT: '8' });
    expect(config.servers['dc1-a']!.dc).toBe('zx9');
    expect(redactSecrets('server "zx9" refused password q7; zx90 and aq7 stay; 8 rows, 18 chunks')).toBe('server "***" refused password ***; zx90 and aq7 stay; 8 rows, 18 chunks');
    expect(redactSecrets(JSON.stringify({ dc: 'zx9', note: 'zx9-east' }))).toBe('{"dc":"***","note":"***-east"}');
  });

  it('refuses URLs it would misread: a query, bad percent-encoding, a control store without a database, a scheme of the other kind', () => {
    expect(rejection(VALID.replace('mysql://app@10.0.0.5:3306', 'mysql://app@10.0.0.5:3306/x?ssl-mode=REQUIRED'))).toContain('servers.dc1-a.primary: the URL has a query');
    const badPercent = rejection(VALID.replace('mysql://app@10.0.0.5:3306', 'mysql://app:100%sure@10.0.0.5:3306'));
    expect(badPercent).toContain("servers.dc1-a.primary: the URL's password is not percent-encoded");
    expect(badPercent).not.toContain('100%sure');
    expect(rejection(VALID.replace('mysql://root@127.0.0.1:3306/membermig_control', 'mysql://root@127.0.0.1:3306'))).toContain('control.url: the URL must name a database');
    expect(rejection(VALID.replace('kind: mssql', 'kind: mysql'))).toContain('source.url: source.kind is mysql, but the URL is mssql://');
    expect(rejection(VALID.replace('control: { url: "mysql://root@127.0.0.1:3306/membermig_control" }', 'control: { url: "mysql://root@127.0.0.1:3306/membermig_control", tls: { ca: /nonexistent/ca.pem } }'))).toContain(
      'control.tls.ca: no such file',
    );
  });

  it('a URL that cannot be read names the reason when it is a port out of range or a password holding #, ? or /, never repeating the password', () => {
    const primary = (url: string) => rejection(VALID.replace('mysql://app@10.0.0.6:3306', url));
    expect(primary('mysql://app@10.0.0.6:99999')).toBe("membermig.yaml:5:21 servers.dc1-b.primary: the URL's port is out of range (at most 65535)");
    for (const url of ['mysql://root:abc#Qz9secret@host:3306/db', 'mysql://root:abc?Qz9secret@host/db', 'mysql://root:abc/Qz9secret@host:3306/db']) {
      const msg = primary(url);
      expect(msg).toContain("servers.dc1-b.primary: the URL's user or password holds a #, ? or / that is not percent-encoded (write %23, %3F, %2F)");
      expect(msg).not.toContain('Qz9secret');
    }
    expect(rejection(VALID.replace('mssql://sa:pw@', 'mssql://sa:p#Qz9secret@'))).toContain("source.url: the URL's user or password holds a #, ? or /");
    expect(primary('not a url')).toContain('servers.dc1-b.primary: expected a URL like mysql://');
  });

  it("an mssql:// URL takes docs/mssql.md's query parameters (encrypt, instance, app) and refuses others without repeating them", () => {
    const withSource = (url: string) => VALID.replace('mssql://sa:pw@127.0.0.1:1433/MemberDB', url);
    for (const query of ['encrypt=false', 'encrypt=strict', 'instance=SQLEXPRESS&app=cutover', 'encrypt=true&app=membermig']) {
      expect(parseConfig(withSource(`mssql://app@sql01:1433/MemberDB?${query}`), 'membermig.yaml', {}).source.url).toContain(query);
    }
    const unknown = rejection(withSource('mssql://app@sql01:1433/MemberDB?pw-part=1'));
    expect(unknown).toContain('source.url: the URL has a query parameter an mssql:// URL does not take (it takes encrypt, instance, app');
    expect(unknown).not.toContain('pw-part');
    expect(rejection(withSource('mssql://app@sql01:1433/MemberDB?encrypt=yes'))).toContain("source.url: the URL's encrypt= should be true, false or strict");
    expect(rejection(withSource('mssql://app@sql01:1433/MemberDB?instance='))).toContain("source.url: the URL's instance= is empty");
    expect(rejection(withSource('mssql://app@sql01:1433/MemberDB#x'))).toContain('source.url: the URL has a fragment');
  });

  it('a column override whose target name begins or ends with a space is refused at its path (MySQL cannot name a column so)', () => {
    const text = VALID.replace('    shard_key: member_id\n', "    shard_key: member_id\n    columns: { Bal: { target: 'bal ' } }\n");
    expect(text).toContain("target: 'bal '");
    expect(rejection(text)).toContain('tables.member.columns.Bal.target: a MySQL column name cannot begin or end with a space');
  });

  it('refuses an unset environment variable or an unreadable secret file, at its path', () => {
    const text = VALID.replace('"mssql://sa:pw@127.0.0.1:1433/MemberDB"', '"${MEMBERMIG_SOURCE_URL}"');
    expect(rejection(text)).toBe('membermig.yaml:2:29 source.url: environment variable MEMBERMIG_SOURCE_URL is not set');
    const fileRef = VALID.replace('mysql://app@10.0.0.5:3306', 'mysql://app:${file:/nonexistent/secret}@10.0.0.5:3306');
    expect(rejection(fileRef)).toContain('servers.dc1-a.primary: cannot read secret file /nonexistent/secret (ENOENT)');
  });

  it('refuses a ${ that is not closed, at its path, without repeating what follows it', () => {
    const text = VALID.replace('mysql://app@10.0.0.5:3306', 'mysql://root:${MM_PW@127.0.0.1:33045/');
    expect(rejection(text, { MM_PW: 'x' })).toBe(
      'membermig.yaml:4:21 servers.dc1-a.primary: the ${ at character 14 is not closed by a }: write ${NAME} or ${file:PATH} (a value holding ${ itself can come from ${file:PATH})',
    );
    // A password typed after a stray ${ is not echoed, nor when a later reference closes a }.
    for (const url of ['mysql://root:${Qz9secret@10.0.0.5:3306', 'mysql://root:${Qz9secret@10.0.0.5:3306/${MM_DB}']) {
      const msg = rejection(VALID.replace('mysql://app@10.0.0.5:3306', url), { MM_DB: 'db' });
      expect(msg).toContain('servers.dc1-a.primary: the ${ at character 14 is not closed');
      expect(msg).not.toContain('Qz9secret');
    }
  });

  it('never puts a secret into an error message', () => {
    const text = VALID.replace('mysql://app@10.0.0.6:3306', 'mysql://app:topsecret99@10.0.0.6:3306').replace('count: 1024', 'count: -1');
    const msg = rejection(text);
    expect(msg).not.toContain('topsecret99');
  });

  it('names a missing config file', () => {
    expect(() => loadConfig('/nonexistent/membermig.yaml')).toThrow('/nonexistent/membermig.yaml: config file not found');
  });
});
