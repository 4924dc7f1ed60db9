import { mulberry32 } from './random.js';

/**
 * Member data for the sandbox demo and the benchmarks: a `member` table of realistic width (~200
 * bytes a row as TSV): Chinese names, emails, mobiles, DECIMAL(18,2), DATETIME(3)/(6), NULLs.
 * Deterministic (row i is always the same), as LOAD DATA text so the legacy server fills fast, or
 * as values for one INSERT (the demo's writer).
 */

export const MEMBER_BENCH_DDL = `CREATE TABLE member (
  member_id BIGINT UNSIGNED NOT NULL,
  name VARCHAR(32) NOT NULL,
  nickname VARCHAR(32) NULL,
  email VARCHAR(64) NULL,
  mobile VARCHAR(20) NULL,
  gender TINYINT NULL,
  birthday DATE NULL,
  level SMALLINT NOT NULL,
  points INT NOT NULL,
  balance DECIMAL(18,2) NOT NULL,
  frozen DECIMAL(18,2) NULL,
  city VARCHAR(32) NULL,
  address VARCHAR(100) NULL,
  created_at DATETIME(3) NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  last_login DATETIME(6) NULL,
  status TINYINT NOT NULL,
  PRIMARY KEY (member_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`;

const SURNAMES = '王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤';
const GIVEN = '伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬芳燕彩春菊兰凤洁梅琳素云莲真环雪荣爱妹霞香月莺媛艳瑞凡佳嘉琼勤珍贞莉桂娣叶璧璐娅琦晶妍茜秋珊莎锦黛青倩婷姣婉娴瑾颖露瑶怡婵雁蓓纨仪荷丹蓉眉君琴蕊薇菁梦岚苑婕馨瑗琰韵融园艺咏卿聪澜纯毓悦昭冰爽琬茗羽希宁欣飘育滢馥筠柔竹霭凝晓欢霄枫芸菲寒伊亚宜可姬舒影荔枝思丽';
const CITIES = ['北京市', '上海市', '广州市', '深圳市', '杭州市', '成都市', '武汉市', '南京市', '重庆市', '西安市', '苏州市', '天津市'];
const STREETS = ['人民路', '解放路', '中山路', '建设路', '和平街', '新华路', '长江路', '黄河大道', '科技园南路', '滨江大道'];
const DOMAINS = ['qq.com', '163.com', 'gmail.com', 'outlook.com', 'sina.com', 'example.cn'];


const pick = <T>(r: () => number, list: ArrayLike<T>): T => list[Math.floor(r() * list.length)]!;
const pad = (n: number, w = 2) => String(n).padStart(w, '0');

function datetime(r: () => number, yearFrom: number, digits: number): string {
  const base = `${yearFrom + Math.floor(r() * 8)}-${pad(1 + Math.floor(r() * 12))}-${pad(1 + Math.floor(r() * 28))} ${pad(Math.floor(r() * 24))}:${pad(Math.floor(r() * 60))}:${pad(Math.floor(r() * 60))}`;
  return `${base}.${pad(Math.floor(r() * 10 ** digits), digits)}`;
}

/** The member id of row i: spread out, increasing. */
export const benchMemberId = (i: number): number => 10_000_000 + i * 7;

/** The columns of MEMBER_BENCH_DDL, in order. */
export const MEMBER_COLUMNS = ['member_id', 'name', 'nickname', 'email', 'mobile', 'gender', 'birthday', 'level', 'points', 'balance', 'frozen', 'city', 'address', 'created_at', 'updated_at', 'last_login', 'status'] as const;

/** Row i as column values in MEMBER_COLUMNS order (text, null for NULL). */
export function memberValues(i: number): (string | null)[] {
  return memberFields(i).map((f) => (f === '\\N' ? null : f));
}

/** Row i as one LOAD DATA line (tab-separated, \N for NULL, newline-terminated). */
export function memberLine(i: number): string {
  return memberFields(i).join('\t') + '\n';
}

function memberFields(i: number): string[] {
  const r = mulberry32(i * 2654435761);
  const name = pick(r, SURNAMES) + pick(r, GIVEN) + (r() < 0.6 ? pick(r, GIVEN) : '');
  const nullable = (p: number, v: () => string) => (r() < p ? '\\N' : v());
  const id = benchMemberId(i);
  const fields = [
    String(id),
    name,
    nullable(0.3, () => name + pick(r, ['小宝', '同学', 'hk', '_88', '酱'])),
    nullable(0.1, () => `user${id.toString(36)}.${Math.floor(r() * 1e6)}@${pick(r, DOMAINS)}`),
    nullable(0.05, () => `1${3 + Math.floor(r() * 7)}${String(Math.floor(r() * 1e9)).padStart(9, '0')}`),
    nullable(0.2, () => String(Math.floor(r() * 2))),
    nullable(0.25, () => `19${50 + Math.floor(r() * 50)}-${pad(1 + Math.floor(r() * 12))}-${pad(1 + Math.floor(r() * 28))}`),
    String(Math.floor(r() * 10)),
    String(Math.floor(r() * 1_000_000)),
    `${Math.floor(r() * 100_000_000)}.${pad(Math.floor(r() * 100))}`,
    nullable(0.7, () => `${Math.floor(r() * 10_000)}.${pad(Math.floor(r() * 100))}`),
    nullable(0.05, () => pick(r, CITIES)),
    nullable(0.15, () => `${pick(r, CITIES)}${pick(r, STREETS)}${1 + Math.floor(r() * 999)}号${1 + Math.floor(r() * 30)}栋${1 + Math.floor(r() * 2000)}室`),
    datetime(r, 2010, 3),
    datetime(r, 2018, 6),
    nullable(0.1, () => datetime(r, 2020, 6)),
    String(Math.floor(r() * 3)),
  ];
  return fields;
}
