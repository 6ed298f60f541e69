// validate.js: the server's input rules, checked in the browser first so a
// mistake is shown next to its field before anything is sent. Each check
// returns an error message or null. The server stays the judge: its own
// error for a field is shown the same way (see components/Field.jsx).

const bytes = (s) => new TextEncoder().encode(s).length;
const chars = (s) => Array.from(s).length; // the server counts code points

const LOCAL_CHAR = /^[a-z0-9.!#$%&'*+/=?^_`{|}~-]$/;

/** accounts' acc_email_normalize: ASCII, one @, a dotted domain. */
export function emailProblem(value) {
  const s = value.toLowerCase();
  if (s.length === 0) return 'Enter your email address.';
  const invalid = 'This is not a valid email address.';
  if (s.length < 3 || s.length > 254 || /[^\x21-\x7e]/.test(s)) return invalid;
  const at = s.indexOf('@');
  if (at <= 0 || s.indexOf('@', at + 1) !== -1) return invalid;
  const local = s.slice(0, at);
  const domain = s.slice(at + 1);
  if (local.length > 64 || local.startsWith('.') || local.endsWith('.') || local.includes('..')) return invalid;
  if (![...local].every((c) => LOCAL_CHAR.test(c))) return invalid;
  const labels = domain.split('.');
  if (labels.length < 2) return invalid;
  for (const l of labels) {
    if (l.length === 0 || l.length > 63 || l.startsWith('-') || l.endsWith('-') || !/^[a-z0-9-]+$/.test(l)) return invalid;
  }
  return null;
}

/** accounts' acc_password_problem: 10 to 128 bytes, not the email address.
 *  Said in characters, as people count; an accented letter or an emoji takes
 *  2 to 4 of the server's bytes, which only matters at the edges. */
export const PASSWORD_HINT = 'At least 10 characters, and not your email address.';
export function passwordProblem(value, email) {
  if (value.length === 0) return 'Enter a password.';
  const n = bytes(value);
  if (n < 10) return 'Use at least 10 characters.';
  if (n > 128) return 'Use at most 128 characters (fewer with accented letters or emoji).';
  if (email && value.toLowerCase() === email.toLowerCase()) return 'Choose a password that is not your email address.';
  return null;
}

/** A TOTP code: 6 digits (spaces ignored). */
export function codeProblem(value) {
  const v = value.replace(/\s+/g, '');
  if (!v) return 'Enter the 6-digit code from your app.';
  if (!/^\d{6}$/.test(v)) return 'The code is 6 digits.';
  return null;
}

/** A string field of the API: min..max characters. */
export function lengthProblem(value, { min = 0, max, label = 'This' }) {
  const n = chars(value);
  if (n < min) return min <= 1 ? `${label} must not be empty.` : `${label} is too short.`;
  if (max && n > max) return `${label} is too long (at most ${max} characters).`;
  return null;
}

export const PROJECT_STATES = [
  ['planning', 'Planning'],
  ['active', 'Active'],
  ['on_hold', 'On hold'],
  ['done', 'Done'],
];

export const stateLabel = (s) => (PROJECT_STATES.find(([v]) => v === s) || [s, s])[1];

export const projectRules = {
  name: (v) => lengthProblem(v, { min: 1, max: 200, label: 'The name' }),
  description: (v) => lengthProblem(v, { max: 10000, label: 'The description' }),
};

export const notesProblem = (v) => lengthProblem(v, { max: 10000, label: 'The notes' });

export const CHAT_BODY_MAX = 4000;
