import type { ShardKey } from '../shard/map.js';
import { Bucketer } from './bucket.js';

/**
 * How application services write one table. Forward one step at a time (gated); back any number
 * of steps at once (never gated).
 */
export const SHIM_MODES = ['legacy_only', 'dual_legacy_primary', 'dual_mysql_primary', 'mysql_only'] as const;
export type ShimMode = (typeof SHIM_MODES)[number];

export function isShimMode(s: string): s is ShimMode {
  return (SHIM_MODES as readonly string[]).includes(s);
}

/** Which writes one member's change makes, in order: the first is the primary, the second the follower. */
export type WritePlan = 'legacy' | 'legacy_then_mysql' | 'mysql_then_legacy' | 'mysql';
export type ReadSide = 'legacy' | 'mysql';

/**
 * Why a member routes where it does, for `gray check` and for the shim's callers.
 * `list`: allow/deny decided; `bucket`: the percentages did.
 */
export interface Route {
  readonly read: ReadSide;
  readonly write: WritePlan;
}

/**
 * A member's write plan under a mode: members inside the write percentage (or allowlisted) write as
 * the mode says; the others write as the step before it. So the write percentage is how far the
 * table has come through its current step, and `legacy_only` writes the legacy side only for all.
 */
const PLAN_BY_MODE: Record<ShimMode, { inside: WritePlan; outside: WritePlan }> = {
  legacy_only: { inside: 'legacy', outside: 'legacy' },
  dual_legacy_primary: { inside: 'legacy_then_mysql', outside: 'legacy' },
  dual_mysql_primary: { inside: 'mysql_then_legacy', outside: 'legacy_then_mysql' },
  mysql_only: { inside: 'mysql', outside: 'mysql_then_legacy' },
};

/** Every possible route, built once, so a decision returns a shared object and allocates nothing. */
const ROUTES: Record<ReadSide, Record<WritePlan, Route>> = {
  legacy: {
    legacy: Object.freeze({ read: 'legacy', write: 'legacy' }),
    legacy_then_mysql: Object.freeze({ read: 'legacy', write: 'legacy_then_mysql' }),
    mysql_then_legacy: Object.freeze({ read: 'legacy', write: 'mysql_then_legacy' }),
    mysql: Object.freeze({ read: 'legacy', write: 'mysql' }),
  },
  mysql: {
    legacy: Object.freeze({ read: 'mysql', write: 'legacy' }),
    legacy_then_mysql: Object.freeze({ read: 'mysql', write: 'legacy_then_mysql' }),
    mysql_then_legacy: Object.freeze({ read: 'mysql', write: 'mysql_then_legacy' }),
    mysql: Object.freeze({ read: 'mysql', write: 'mysql' }),
  },
};

/** The gray settings of one table as stored in settings.value (kind 'gray'). */
export interface GraySetting {
  read_bp: number;
  write_bp: number;
  /** Generated at the first `gray set` of the table and kept for ever after. */
  salt: string;
  /** Member ids (text form) that always go to MySQL as far as the mode allows. */
  allow: string[];
  /** Member ids (text form) that always stay on legacy; wins over the allowlist. */
  deny: string[];
}

/** The shim setting of one table as stored in settings.value (kind 'shim'). */
export interface ShimSetting {
  mode: ShimMode;
}

export const DEFAULT_SHIM: ShimSetting = Object.freeze({ mode: 'legacy_only' }) as ShimSetting;

/** Until a table's first `gray set` it has no salt; nobody is inside 0%, so no bucket is needed. */
export const DEFAULT_GRAY: GraySetting = Object.freeze({ read_bp: 0, write_bp: 0, salt: '', allow: [], deny: [] }) as unknown as GraySetting;

/**
 * One table's settings compiled for fast decisions: the lists as sets (numbers and text, so a numeric
 * id needs no string), and a bucketer holding the salt.
 */
export class TableRouter {
  readonly readBp: number;
  readonly writeBp: number;
  private readonly plans: { inside: WritePlan; outside: WritePlan };
  private readonly bucketer: Bucketer;
  private readonly allowText: Set<string>;
  private readonly allowNumber: Set<number>;
  private readonly denyText: Set<string>;
  private readonly denyNumber: Set<number>;

  constructor(
    readonly shim: ShimSetting,
    readonly gray: GraySetting,
  ) {
    this.readBp = gray.read_bp;
    this.writeBp = gray.write_bp;
    this.plans = PLAN_BY_MODE[shim.mode];
    this.bucketer = new Bucketer(gray.salt);
    this.allowText = new Set(gray.allow);
    this.denyText = new Set(gray.deny);
    this.allowNumber = numericIds(gray.allow);
    this.denyNumber = numericIds(gray.deny);
  }

  /** Where this member's reads go and which writes it makes. Allocation-free for number and ASCII string ids. */
  route(memberId: ShardKey): Route {
    if (this.listed(memberId, this.denyText, this.denyNumber)) return ROUTES.legacy.legacy;
    let inRead: boolean;
    let inWrite: boolean;
    if (this.listed(memberId, this.allowText, this.allowNumber)) {
      inRead = true;
      inWrite = true;
    } else if (this.readBp === 0 && this.writeBp === 0) {
      inRead = false;
      inWrite = false;
    } else {
      const bucket = this.bucketer.bucket(memberId);
      inRead = bucket < this.readBp;
      inWrite = bucket < this.writeBp;
    }
    const write = inWrite ? this.plans.inside : this.plans.outside;
    // A member whose primary is MySQL reads MySQL, or it would not read its own writes: legacy gets
    // them second at best, and a failed second write is never put back there (verify holds it).
    return ROUTES[inRead || write === 'mysql' || write === 'mysql_then_legacy' ? 'mysql' : 'legacy'][write];
  }

  /** The route with its reasons, for people (`gray check`). */
  explain(memberId: ShardKey): RouteExplanation {
    const bucket = this.gray.salt ? this.bucketer.bucket(memberId) : null;
    const denied = this.listed(memberId, this.denyText, this.denyNumber);
    const allowed = this.listed(memberId, this.allowText, this.allowNumber);
    const route = this.route(memberId);
    let why: string;
    if (denied) why = allowed ? 'on the denylist (and the allowlist: the denylist wins)' : 'on the denylist: always legacy';
    else if (allowed) why = 'on the allowlist: inside both percentages';
    else if (bucket === null) why = 'no gray setting yet: 0% read and write';
    else why = `bucket ${bucket}: ${bucket < this.readBp ? 'inside' : 'outside'} read ${this.readBp} bp, ${bucket < this.writeBp ? 'inside' : 'outside'} write ${this.writeBp} bp`;
    if (!denied && bucket !== null && bucket >= this.readBp && !allowed && route.read === 'mysql') why += '; reads MySQL, its write primary';
    return { ...route, bucket, allowlisted: allowed, denylisted: denied, mode: this.shim.mode, why };
  }

  private listed(memberId: ShardKey, text: Set<string>, numbers: Set<number>): boolean {
    if (text.size === 0) return false;
    if (typeof memberId === 'number') return numbers.has(memberId);
    if (typeof memberId === 'string') return text.has(memberId);
    return text.has(memberId.toString());
  }
}

export interface RouteExplanation extends Route {
  bucket: number | null;
  allowlisted: boolean;
  denylisted: boolean;
  mode: ShimMode;
  why: string;
}

function numericIds(ids: string[]): Set<number> {
  const out = new Set<number>();
  for (const id of ids) {
    if (/^-?\d+$/.test(id)) {
      const n = Number(id);
      if (Number.isSafeInteger(n) && String(n) === id) out.add(n);
    }
  }
  return out;
}
