import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nonCanonicalIds, outOfRangeIds } from '../src/gray/member-ids.js';
import { integerRange } from '../src/rows/mysql.js';
import { runCli } from './support/cli.js';
import { createTestEnv, type TestEnv } from './support/env.js';

/**
 * Member ids typed to `gray check` and `gray set --allow/--deny` are checked against the shard key's
 * column type: for an integer key, "0123" names no member the service ever sends (it hashes "123").
 */
describe('gray: member ids as the service sends them', () => {
  let env: TestEnv;
  const cli = (...args: string[]) => runCli([...args, '--config', env.configPath]);

  beforeAll(async () => {
    env = await createTestEnv({
      shardCount: 4,
      tables: {
        member: { source: 'legacy.member', target: 'member', shard_key: 'member_id' },
        voucher: { source: 'legacy.voucher', target: 'voucher', shard_key: 'code' },
      },
      legacySql: ['CREATE TABLE member (member_id BIGINT PRIMARY KEY, name VARCHAR(50) NULL)', 'CREATE TABLE voucher (code VARCHAR(20) PRIMARY KEY, amount DECIMAL(10,2) NULL)'],
    });
    const init = await cli('init');
    expect(init.code, init.stderr).toBe(0);
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  it('the canonical integer form is what keyText prints', () => {
    expect(nonCanonicalIds(['0', '7', '-7', '9223372036854775807', '18446744073709551615'])).toEqual([]);
    expect(nonCanonicalIds(['0123', '+5', '-0', '1e3', ' 5', '5 ', '0x1F', '1.0', '', 'abc'])).toEqual(['0123', '+5', '-0', '1e3', ' 5', '5 ', '0x1F', '1.0', '', 'abc']);
  });

  it('the range of each integer type, signed and unsigned', () => {
    expect(integerRange('bigint', false)).toEqual({ min: -9223372036854775808n, max: 9223372036854775807n });
    expect(integerRange('bigint', true)).toEqual({ min: 0n, max: 18446744073709551615n });
    expect(integerRange('tinyint', false)).toEqual({ min: -128n, max: 127n });
    expect(outOfRangeIds(['0', '-1', '255', '256'], { dataType: 'tinyint', unsigned: true })).toEqual(['-1', '256']);
    expect(outOfRangeIds(['9223372036854775807', '9223372036854775808', '-9223372036854775808', '-9223372036854775809'], { dataType: 'bigint', unsigned: false })).toEqual([
      '9223372036854775808',
      '-9223372036854775809',
    ]);
  });

  it('refuses ids past the key column\'s range: no member has them', async () => {
    const check = await cli('gray', 'check', 'member', '9223372036854775808');
    expect(check.code).toBe(2);
    expect(check.stderr).toContain('member id "9223372036854775808" is outside member.member_id\'s range (bigint: -9223372036854775808 to 9223372036854775807): no member has it');
    const set = await cli('gray', 'set', 'member', '--deny', '1,99999999999999999999', '--reason', 'r');
    expect(set.code).toBe(2);
    expect(set.stderr).toContain('member id "99999999999999999999" is outside');
    expect((await cli('gray', 'check', 'member', '9223372036854775807')).code).toBe(0);
  });

  it('refuses ids an integer key cannot have as written, naming the column and its type; text keys take any id', async () => {
    const check = await cli('gray', 'check', 'member', '0123');
    expect(check.code).toBe(2);
    expect(check.stderr).toContain('member id "0123" is not an integer as the service sends it: member.member_id is bigint');
    const set = await cli('gray', 'set', 'member', '--allow', '5,+6,abc', '--reason', 'r');
    expect(set.code).toBe(2);
    expect(set.stderr).toContain('member id "+6", "abc" is not an integer');
    for (const flag of ['--unallow', '--deny', '--undeny']) expect((await cli('gray', 'set', 'member', flag, '07', '--reason', 'r')).code, flag).toBe(2);
    const history = await cli('gray', 'history', 'member', '--json');
    expect(JSON.parse(history.stdout).result).toEqual([]);

    const good = await cli('gray', 'check', 'member', '123', '--json');
    expect(good.code, good.stderr).toBe(0);
    expect(JSON.parse(good.stdout).result).toMatchObject({ memberId: '123', notes: [] });
    // Spaces around an integer key's digits are dropped ("5, -6" as typed in a list).
    const denied = await cli('gray', 'set', 'member', '--deny', '5, -6', '--reason', 'r', '--json');
    expect(denied.code, denied.stderr).toBe(0);
    expect(JSON.parse(denied.stdout).result.after.deny).toEqual(['-6', '5']);
    expect(JSON.parse((await cli('gray', 'check', 'member', ' 5', '--json')).stdout).result).toMatchObject({ memberId: '5', denylisted: true });

    // A text key takes ids exactly as typed: " vip" and "vip" are two members.
    const vip = await cli('gray', 'set', 'voucher', '--deny', ' vip', '--reason', 'r', '--json');
    expect(vip.code, vip.stderr).toBe(0);
    expect(JSON.parse(vip.stdout).result.after.deny).toEqual([' vip']);
    expect(JSON.parse((await cli('gray', 'check', 'voucher', ' vip', '--json')).stdout).result).toMatchObject({ memberId: ' vip', denylisted: true });
    expect(JSON.parse((await cli('gray', 'check', 'voucher', 'vip', '--json')).stdout).result).toMatchObject({ memberId: 'vip', denylisted: false });

    const text = await cli('gray', 'check', 'voucher', '0123', '--json');
    expect(text.code, text.stderr).toBe(0);
    expect(JSON.parse(text.stdout).result).toMatchObject({ memberId: '0123', notes: [] });
  });

  it('a shard server that cannot be asked does not block a change: the ids go through, and the result says they were not checked', async () => {
    const raw = structuredClone(env.raw) as { servers: Record<string, { primary: string }> };
    raw.servers['shard-a']!.primary = 'mysql://root@127.0.0.1:1/';
    const path = join(dirname(env.configPath), 'shard-a-down.yaml');
    writeFileSync(path, stringify(raw));
    const r = await runCli(['gray', 'set', 'member', '--deny', '0042', '--reason', 'incident', '--config', path]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("note: member ids not checked against the shard key's type: server shard-a could not be asked");
    expect(r.stdout).not.toContain('root@');
  });
});
