/**
 * Every value read through ${NAME} or ${file:PATH} is registered here, so that anything
 * we print or log can be scrubbed of it. URLs are also masked by shape (see maskUrl).
 */
const secrets = new Set<string>();

/** Values shorter than this are too likely to collide with ordinary text to scrub. */
const MIN_SECRET_LENGTH = 4;

export function registerSecret(value: string): void {
  const trimmed = value.trim();
  if (trimmed.length >= MIN_SECRET_LENGTH) secrets.add(trimmed);
  if (value.length >= MIN_SECRET_LENGTH) secrets.add(value);
  registerUrlPassword(value);
}

/** A whole URL (from the environment, say) carries its password inside: that part is a secret too. */
function registerUrlPassword(value: string): void {
  const password = urlPassword(value.trim());
  if (password && password.length >= MIN_SECRET_LENGTH) secrets.add(password);
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
  for (const secret of secrets) {
    // As it is, percent-encoded (in a URL) and escaped in JSON (a log line, --json output).
    for (const form of new Set([secret, encodeURIComponent(secret), JSON.stringify(secret).slice(1, -1)])) {
      if (out.includes(form)) out = scrub(out, form);
    }
  }
  return maskUrlPasswords(out);
}

/**
 * A secret of digits only (a port, a count from the environment) is scrubbed where it stands as a
 * whole number: inside a longer one (133770 rows, with 3377 secret) it is another number.
 */
function scrub(text: string, secret: string): string {
  if (/^\d+$/.test(secret)) return text.replace(new RegExp(`(?<!\\d)${secret}(?!\\d)`, 'g'), '***');
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
