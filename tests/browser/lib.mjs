// lib.mjs: what every browser test file shares: the browser (Debian's
// Chromium through playwright-core), the API straight from node, new users
// and projects, the stack's mail sink, TOTP codes, an accessibility check
// (axe-core), and `scenario`, which saves a screenshot of every page a
// failing test opened and fails a test on any CSP violation or page error.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

export const BASE = process.env.PL_BASE_URL.replace(/\/$/, '');
export const SHOTS = process.env.PL_SCREENSHOTS;
export const MAIL_DIR = process.env.PL_MAIL_DIR;
export const ADMIN = { email: process.env.PL_ADMIN_EMAIL, password: process.env.PL_ADMIN_PASSWORD };
export const PASSWORD = 'correct horse battery';
export const PHONE = { width: 375, height: 812 };
const TIMEOUT = 10000;

let browser;
let seq = 0;

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.PL_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
});

after(async () => {
  if (browser) await browser.close();
});

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function uniqueEmail(tag) {
  seq += 1;
  return `${tag}-${Date.now().toString(36)}-${seq}-${Math.random().toString(36).slice(2, 7)}@pilotlight.test`;
}

/** The API straight from node (no browser): JSON in, {status, body, headers} out. */
export async function apiCall(method, url, { token, body, headers = {} } = {}) {
  const h = { ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  if (body !== undefined) h['Content-Type'] = 'application/json';
  const res = await fetch(BASE + url, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
}

/** A new account; returns {email, password, name, token, id}. */
export async function newUser(tag) {
  const email = uniqueEmail(tag);
  const name = `${tag[0].toUpperCase()}${tag.slice(1)} Tester`;
  const s = await apiCall('POST', '/api/accounts/signup', { body: { email, password: PASSWORD, display_name: name } });
  assert.equal(s.status, 201, JSON.stringify(s.body));
  const l = await apiCall('POST', '/api/accounts/login', { body: { email, password: PASSWORD } });
  assert.equal(l.status, 200);
  return { email, password: PASSWORD, name, token: l.body.access_token, id: l.body.user.id };
}

export async function adminToken() {
  const l = await apiCall('POST', '/api/accounts/login', { body: { email: ADMIN.email, password: ADMIN.password } });
  assert.equal(l.status, 200, 'the test stack has its admin');
  return l.body.access_token;
}

export async function newProject(user, name) {
  const r = await apiCall('POST', '/api/projects', { token: user.token, body: { name, description: 'Made by the browser tests.' } });
  assert.equal(r.status, 201);
  return r.body.project;
}

/**
 * A browser context with one page; CSP violations and page errors are
 * collected (and console errors, for the tests that want none at all).
 * signedInAs: {email, password} logs in through the API with the refresh
 * cookie in this context's jar (as the login page does) and marks the
 * browser as having a session (localStorage "pl.session", as the app does).
 */
export async function openPage({ signedInAs, viewport = { width: 1280, height: 900 }, colorScheme = 'light' } = {}) {
  const context = await browser.newContext({ baseURL: BASE, viewport, colorScheme });
  context.setDefaultTimeout(TIMEOUT);
  const page = await context.newPage();
  const problems = [];
  const consoleErrors = [];
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    consoleErrors.push(msg.text());
    if (/Content Security Policy|Refused to/i.test(msg.text())) problems.push(msg.text());
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  if (signedInAs) {
    const r = await context.request.post('/api/accounts/login', {
      data: { email: signedInAs.email, password: signedInAs.password, cookie: true },
    });
    assert.equal(r.status(), 200);
    await context.addInitScript(() => {
      if (!window.sessionStorage.getItem('pl.test.seeded')) {
        window.sessionStorage.setItem('pl.test.seeded', '1');
        window.localStorage.setItem('pl.session', '1');
      }
    });
  }
  return { context, page, problems, consoleErrors };
}

/** Runs a scenario; on failure saves a screenshot of every page it opened. */
export function scenario(name, fn, { timeout = 90000 } = {}) {
  test(name, { timeout }, async () => {
    const opened = [];
    const open = async (opts) => {
      const p = await openPage(opts);
      opened.push(p);
      return p;
    };
    try {
      await fn(open);
      for (const p of opened) assert.deepEqual(p.problems, [], 'no CSP violations or page errors');
    } catch (err) {
      const slug = name.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '').slice(0, 60);
      for (const [i, p] of opened.entries()) {
        await p.page
          .screenshot({ path: path.join(SHOTS, `failure-${slug}-${i + 1}.png`), fullPage: true })
          .catch(() => {});
      }
      throw err;
    } finally {
      for (const p of opened) await p.context.close().catch(() => {});
    }
  });
}

export const shot = (page, name, { fullPage = true } = {}) =>
  page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage });

export async function expectText(locator, text) {
  await locator.filter({ hasText: text }).first().waitFor({ state: 'visible' });
}

/** Waits until fn() is truthy (polling), or fails with message. */
export async function until(fn, message, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) assert.fail(message);
    await sleep(50);
  }
}

/** Waits for an input to hold `value`. */
export async function expectValue(locator, value, message, timeoutMs = 5000) {
  await until(async () => (await locator.inputValue()) === value, message, timeoutMs);
}

export async function noSideScroll(page, where) {
  const [sw, cw] = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
  assert.ok(sw <= cw, `${where}: content ${sw}px wide in a ${cw}px window`);
}

/** The signed-in header's account menu, then one of its items. */
export async function accountMenu(page, item) {
  await page.getByRole('button', { name: /account menu$/ }).click();
  await page.getByRole('menuitem', { name: item }).click();
}

// ---- mail ----------------------------------------------------------------------

function decodePart(headers, body) {
  const cte = (headers.match(/content-transfer-encoding:\s*([\w-]+)/i) || [])[1] || '';
  if (/quoted-printable/i.test(cte))
    return body.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/gi, (_, h) => String.fromCharCode(parseInt(h, 16)));
  if (/base64/i.test(cte)) return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  return body;
}

/** The plain text of every mail the sink kept for `to`, oldest first. */
export function mailsTo(to) {
  if (!MAIL_DIR || !fs.existsSync(MAIL_DIR)) return [];
  const out = [];
  for (const f of fs.readdirSync(MAIL_DIR).filter((n) => n.endsWith('.eml')).sort()) {
    const raw = fs.readFileSync(path.join(MAIL_DIR, f), 'utf8');
    const split = raw.indexOf('\r\n\r\n') >= 0 ? raw.indexOf('\r\n\r\n') : raw.indexOf('\n\n');
    const head = raw.slice(0, split);
    const toLine = (head.match(/^(?:To|X-Pilotlight-Envelope-To):.*$/gim) || []).join(' ');
    if (!toLine.toLowerCase().includes(to.toLowerCase())) continue;
    const boundary = (head.match(/boundary="?([^";\r\n]+)"?/i) || [])[1];
    let text = decodePart(head, raw.slice(split).trim());
    if (boundary) {
      for (const part of raw.split(`--${boundary}`)) {
        const s = part.search(/\r?\n\r?\n/);
        if (s < 0) continue;
        const ph = part.slice(0, s);
        if (/content-type:\s*text\/plain/i.test(ph)) {
          text = decodePart(ph, part.slice(s).trim());
          break;
        }
      }
    }
    out.push(text);
  }
  return out;
}

/** Waits for a mail to `to` holding a link to `linkPath` and answers the link's path and query. */
export async function mailedLink(to, linkPath, { after = 0, timeoutMs = 10000 } = {}) {
  const re = new RegExp(`${linkPath.replace(/[?]/g, '\\?')}\\?token=([A-Za-z0-9_-]+)`);
  return until(
    () => {
      const found = mailsTo(to).slice(after).map((t) => t.match(re)).filter(Boolean);
      return found.length ? `${linkPath}?token=${found[found.length - 1][1]}` : null;
    },
    `a mail to ${to} with a ${linkPath} link`,
    timeoutMs,
  );
}

// ---- TOTP (RFC 6238), to answer the two-factor steps --------------------------------

function base32(s) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of s.replace(/=+$/, '').toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const out = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) out.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(out);
}

export function totp(secret, at = Date.now()) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 1000 / 30)));
  const h = crypto.createHmac('sha1', base32(secret)).update(counter).digest();
  const o = h[h.length - 1] & 0xf;
  const n = ((h[o] & 0x7f) << 24) | (h[o + 1] << 16) | (h[o + 2] << 8) | h[o + 3];
  return String(n % 1000000).padStart(6, '0');
}

// ---- accessibility ---------------------------------------------------------------------

const require = createRequire(import.meta.url);
const AXE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

/**
 * axe-core on the page as it is (injected through the DevTools protocol, so
 * the page's CSP is untouched): the serious and critical violations, as
 * "rule: target" lines.
 */
export async function axeProblems(page) {
  await page.evaluate(AXE);
  const result = await page.evaluate(async () =>
    // eslint-disable-next-line no-undef
    axe.run(document, { resultTypes: ['violations'], runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] } }),
  );
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .flatMap((v) => v.nodes.map((n) => `${v.id} (${v.impact}): ${n.target.join(' ')} — ${n.failureSummary.split('\n')[1] || ''}`));
}
