// errors.js: the one map from an API error code to the words a person reads.
// Every page shows errors through humanError(); the server's own message is
// only the fallback for a code this map does not know yet. A 429 says how
// long to wait (from Retry-After).

const WORDS = {
  // reaching the server
  network_error: 'You seem to be offline. We will retry when the connection is back.',
  bad_gateway: 'That part of Pilotlight is restarting. Try again in a moment.',
  service_unavailable: 'That part of Pilotlight is not reachable right now. Try again in a moment.',
  upstream_timeout: 'Pilotlight took too long to answer. Try again in a moment.',
  database_unavailable: 'Pilotlight cannot reach its database right now. Try again in a moment.',
  internal_error: 'Something went wrong on our side. Try again; if it keeps happening, tell an administrator.',
  invocation_depth_exceeded: 'Something went wrong on our side. Try again; if it keeps happening, tell an administrator.',
  invocation_budget_exceeded: 'Something went wrong on our side. Try again; if it keeps happening, tell an administrator.',
  room_busy: 'The room is busy. Your message will be sent again in a moment.',
  // sessions
  missing_token: 'Please log in again.',
  invalid_token: 'Your session has ended. Please log in again.',
  invalid_refresh_token: 'Your session has ended. Please log in again.',
  refresh_token_reused: 'For your safety this session was ended. Please log in again.',
  account_disabled: 'This account has been disabled. Contact an administrator if you think this is a mistake.',
  email_not_verified: 'Confirm your email address first: we have sent you a new link.',
  forbidden: 'You do not have access to this.',
  not_found: 'This does not exist, or you do not have access to it.',
  room_not_found: 'This chat room does not exist.',
  // log in, sign up
  invalid_credentials: 'That email and password do not match an account.',
  email_taken: 'An account with this email address already exists.',
  weak_password: 'Choose a password of 10 to 128 characters that is not your email address.',
  wrong_password: 'Your current password is not right.',
  account_locked: 'Too many wrong attempts: this account is locked for now.',
  mfa_code_required: 'Enter the 6-digit code from your authenticator app, or a recovery code.',
  invalid_mfa_code: 'That code is not right. Check your app and try again.',
  mfa_code_used: 'That code was just used. Wait for the next one in your app.',
  mfa_already_enabled: 'Two-factor authentication is already on.',
  mfa_not_enabled: 'Two-factor authentication is off.',
  mfa_not_enrolled: 'Start the set-up again: it was restarted somewhere else.',
  // mailed links
  token_unknown: 'This link is not valid. Ask for a new one.',
  token_expired: 'This link has expired. Ask for a new one.',
  token_used: 'This link was already used.',
  too_many_mails: 'We have just sent you an email.',
  email_already_verified: 'Your email address is already confirmed.',
  email_unchanged: 'That is already your email address.',
  // projects
  version_conflict: 'Someone else changed this while you were editing.',
  project_not_found: 'That project does not exist any more.',
  no_primary_project: 'You have no primary project yet.',
  idempotency_key_in_use: 'This is still being saved. Give it a moment.',
  last_admin: 'This would leave Pilotlight without an active administrator.',
  session_not_found: 'That session has already ended.',
  // input
  payload_too_large: 'That is too large to send.',
  invalid_field: 'Check the highlighted field.',
  missing_field: 'Fill in the highlighted field.',
  rate_limited: 'Too many requests in a short time.',
};

/** "in 5 seconds", "in 2 minutes". */
export function inTime(seconds) {
  const s = Math.max(1, Math.ceil(seconds));
  if (s < 60) return `in ${s} second${s === 1 ? '' : 's'}`;
  const m = Math.ceil(s / 60);
  return `in ${m} minute${m === 1 ? '' : 's'}`;
}

/** The words for an error (an ApiError, or anything thrown). */
export function humanError(err) {
  if (!err) return null;
  if (typeof err === 'string') return err;
  const code = err.code;
  let words = WORDS[code];
  if ((code === 'rate_limited' || code === 'account_locked' || code === 'too_many_mails') && err.retryAfter) {
    words = `${words} Try again ${inTime(err.retryAfter)}.`;
  } else if (code === 'rate_limited') words = `${words} Wait a moment and try again.`;
  if (words) return words;
  if (err.status >= 500) return WORDS.internal_error;
  if (err.status === 0) return WORDS.network_error;
  return err.message || 'Something went wrong. Try again.';
}

/** True when trying again later may work (the network, a restart, a limit). */
export function isTransient(err) {
  if (!err) return false;
  if (err.status === 0) return true;
  if (err.status === 429 && err.code === 'rate_limited') return true;
  if (err.code === 'room_busy' || err.code === 'idempotency_key_in_use') return true;
  return err.status === 502 || err.status === 503 || err.status === 504;
}
