/**
 * Every value read through ${NAME} or ${file:PATH} is registered here, so that anything
 * we print or log can be scrubbed of it. URLs are also masked by shape (see maskUrl).
 */
const secrets = new Set<string>();

/**
 * Values shorter than this are scrubbed only where they stand alone (not inside a longer word):
 * a 3-letter password is still a password, but scrubbing every "dc1" inside "dc12" would garble
 * the output. A short value without a letter (a worker count, "-") is not taken for a secret: it
 * would hide every small count and empty cell of a summary.
 */
const MIN_SECRET_LENGTH = 4;

export function registerSecret(value: string): void {
  for (const form of new Set([value, value.trim()])) {
    if (form.length >= MIN_SECRET_LENGTH || (/[\p{L}]/u.test(form) && form.trim() === form)) secrets.add(form);
  }
  registerUrlPassword(value);
}

/**
 * The passwords of every URL in a config, written in the YAML as they are (not through ${...}): a
 * driver's message that quotes one alone (not inside its URL) is scrubbed of it too.
 */
export function registerUrlPasswordsIn(value: unknown): void {
  if (typeof value === 'string') registerUrlPassword(value);
  else if (Array.isArray(value)) for (const v of value) registerUrlPasswordsIn(v);
  else if (value !== null && typeof value === 'object') for (const v of Object.values(value)) registerUrlPasswordsIn(v);
}

/** A whole URL (from the environment, say) carries its password inside: that part is a secret too. */
function registerUrlPassword(value: string): void {
  const password = urlPassword(value.trim());
  if (password) registerSecret(password);
}

function urlPassword(value: string): string | undefined {
  try {
    const u = new URL(value);
    return u.password ? decodeURIComponent(u.password) : undefined;
  } catch {
    return undefined;
  }
}

/** Replace every registered secret and every URL password in `text` with `***`. */
export function redactSecrets(text: string): string {
  let out = text;
  // Longest first: a short secret inside a longer one ('pw' in 'env-secret-pw') would leave the rest of it.
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
    // As it is, percent-encoded (in a URL) and escaped in JSON (a log line, --json output).
    for (const form of new Set([secret, encodeURIComponent(secret), JSON.stringify(secret).slice(1, -1)])) {
      if (out.includes(form)) out = scrub(out, form);
    }
  }
  return maskUrlPasswords(out);
}

/**
 * A secret of digits only (a port, a count from the environment) is scrubbed where it stands as a
 * whole number: inside a longer one (133770 rows, with 3377 secret) it is another number. A short
 * secret is scrubbed where it stands as a whole word.
 */
function scrub(text: string, secret: string): string {
  const escaped = secret.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  if (/^\d+$/.test(secret)) return text.replace(new RegExp(`(?<!\\d)${escaped}(?!\\d)`, 'g'), '***');
  if (secret.length < MIN_SECRET_LENGTH) return text.replace(new RegExp(`(?<![\\p{L}\\p{N}_])${escaped}(?![\\p{L}\\p{N}_])`, 'gu'), '***');
  return text.split(secret).join('***');
}

const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:@/]*):([^\s@/]*)@/gi;

/** `mysql://app:pw@host` → `mysql://app:***@host`, anywhere in a text. */
export function maskUrlPasswords(text: string): string {
  return text.replace(URL_PASSWORD, (_m, user: string) => `${user}:***@`);
}

/** The URL with its password masked, for display. */
export function maskUrl(url: string): string {
  return maskUrlPasswords(url);
}
