// app.test.mjs: the web client in a real browser (Debian's Chromium through
// playwright-core), against the stack of `./pilotlight test`: nginx serving
// web/dist in front of the real services. Each test uses fresh users; a
// failing test leaves a screenshot (failure-<test>.png) beside the pages'
// screenshots in PL_SCREENSHOTS. Every page is also checked for Content
// Security Policy violations (the app must need no inline script or style).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { chromium } from 'playwright-core';

const BASE = process.env.PL_BASE_URL.replace(/\/$/, '');
const SHOTS = process.env.PL_SCREENSHOTS;
const ADMIN = { email: process.env.PL_ADMIN_EMAIL, password: process.env.PL_ADMIN_PASSWORD };
const PASSWORD = 'correct horse battery';
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

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function uniqueEmail(tag) {
  seq += 1;
  return `${tag}-${Date.now().toString(36)}-${seq}-${Math.random().toString(36).slice(2, 7)}@pilotlight.test`;
}

/** The API straight from node (no browser): JSON in, {status, body, headers} out. */
async function apiCall(method, url, { token, body, headers = {} } = {}) {
  const h = { ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  if (body !== undefined) h['Content-Type'] = 'application/json';
  const res = await fetch(BASE + url, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
}

/** A new account; returns {email, password, name, token, id}. */
async function newUser(tag) {
  const email = uniqueEmail(tag);
  const name = `${tag[0].toUpperCase()}${tag.slice(1)} Tester`;
  const s = await apiCall('POST', '/api/accounts/signup', { body: { email, password: PASSWORD, display_name: name } });
  assert.equal(s.status, 201, JSON.stringify(s.body));
  const l = await apiCall('POST', '/api/accounts/login', { body: { email, password: PASSWORD } });
  assert.equal(l.status, 200);
  return { email, password: PASSWORD, name, token: l.body.access_token, id: l.body.user.id };
}

async function adminToken() {
  const l = await apiCall('POST', '/api/accounts/login', { body: { email: ADMIN.email, password: ADMIN.password } });
  assert.equal(l.status, 200, 'the test stack has its admin');
  return l.body.access_token;
}

async function newProject(user, name) {
  const r = await apiCall('POST', '/api/projects', { token: user.token, body: { name, description: 'Made by the browser tests.' } });
  assert.equal(r.status, 201);
  return r.body.project;
}

/**
 * A browser context with one page; CSP violations and page errors are
 * collected. signedInAs: {email, password} logs in through the API with the
 * refresh cookie in this context's jar (as the login page does).
 */
async function openPage({ signedInAs, viewport = { width: 1280, height: 900 } } = {}) {
  const context = await browser.newContext({ baseURL: BASE, viewport });
  context.setDefaultTimeout(TIMEOUT);
  const page = await context.newPage();
  const problems = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error' && /Content Security Policy|Refused to/i.test(msg.text())) problems.push(msg.text());
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  if (signedInAs) {
    const r = await context.request.post('/api/accounts/login', {
      data: { email: signedInAs.email, password: signedInAs.password, cookie: true },
    });
    assert.equal(r.status(), 200);
  }
  return { context, page, problems };
}

/** Runs a scenario; on failure saves a screenshot of every page it opened. */
function scenario(name, fn) {
  test(name, async () => {
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

const shot = (page, name, { fullPage = true } = {}) =>
  page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage });

async function expectText(locator, text) {
  await locator.filter({ hasText: text }).first().waitFor({ state: 'visible' });
}

// Waits for an input to hold `value` (what a page does after a response may
// come after what another page already saw live).
async function expectValue(locator, value, message, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  let seen;
  while ((seen = await locator.inputValue()) !== value && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 50));
  assert.equal(seen, value, message);
}

// ---- serving ------------------------------------------------------------------

scenario('nginx serves the app: SPA fallback, caching, gzip, friendly 404', async (open) => {
  const index = await fetch(`${BASE}/`);
  assert.equal(index.status, 200);
  assert.match(index.headers.get('content-type'), /text\/html/);
  assert.equal(index.headers.get('cache-control'), 'no-cache');
  assert.match(index.headers.get('content-security-policy'), /default-src 'self'/);
  const html = await index.text();
  assert.ok(!/<script(?![^>]*\bsrc=)[^>]*>/i.test(html), 'no inline script in index.html');
  assert.ok(!/\sstyle=/i.test(html), 'no inline style in index.html');

  const asset = html.match(/\/assets\/[^"]+\.js/)[0];
  const js = await fetch(BASE + asset, { headers: { 'Accept-Encoding': 'gzip' } });
  assert.equal(js.status, 200);
  assert.equal(js.headers.get('cache-control'), 'public, max-age=31536000, immutable');
  assert.equal(js.headers.get('content-encoding'), 'gzip');

  const route = await fetch(`${BASE}/projects/12345`);
  assert.equal(route.status, 200, 'a client-side route is index.html');
  assert.equal(await route.text(), html);

  for (const missing of ['/no-such-file.js', '/assets/index-00000000.js']) {
    const r = await fetch(BASE + missing);
    assert.equal(r.status, 404, missing);
    assert.match(r.headers.get('content-type'), /text\/html/);
    const body = await r.text();
    assert.match(body, /Page not found/);
    assert.doesNotMatch(body, /nginx/i);
  }
  const api404 = await fetch(`${BASE}/api/nothing`);
  assert.equal(api404.status, 404);
  assert.match(api404.headers.get('content-type'), /application\/json/, 'the API still answers JSON');

  const { page } = await open();
  const r = await page.goto('/missing-page.html');
  assert.equal(r.status(), 404);
  await page.getByRole('heading', { name: 'Page not found' }).waitFor();
  await shot(page, 'error-404');
  await page.goto('/no/such/route');
  await page.getByRole('heading', { name: 'Page not found' }).waitFor();
  await shot(page, 'not-found-route');
});

// ---- sign-up, projects, primary ---------------------------------------------

scenario('a new user signs up, creates a project, edits its state, marks it primary; a reload keeps it', async (open) => {
  const { page } = await open();
  const email = uniqueEmail('newbie');

  // a deep link while signed out: to login, and back there after signing up
  await page.goto('/projects');
  await page.waitForURL(/\/login\?next=%2Fprojects$/);
  await page.getByRole('heading', { name: 'Log in' }).waitFor();
  await shot(page, 'login');
  await page.getByRole('link', { name: 'Sign up' }).last().click();
  await page.waitForURL(/\/signup\?next=/);

  // inline validation mirrors the server's rules
  await page.getByLabel('Email').fill('not-an-email');
  await page.getByLabel('Email').blur();
  await expectText(page.locator('.field-error'), 'not a valid email address');
  await page.getByLabel('Password').fill('short');
  await page.getByLabel('Password').blur();
  await expectText(page.locator('.field-error'), 'at least 10 bytes');
  await page.getByRole('button', { name: 'Create account' }).click();
  await expectText(page.locator('.field-error'), 'Your name must not be empty');
  await shot(page, 'signup-errors');

  await page.getByLabel('Your name').fill('Nina Newbie');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.waitForURL(/\/projects$/);
  await page.getByText('No projects yet.').waitFor();
  assert.equal(await page.locator('.whoami-name').textContent(), 'Nina Newbie');

  // create in the Modal
  await page.getByRole('button', { name: 'New project' }).click();
  const dialog = page.getByRole('dialog', { name: 'New project' });
  await dialog.getByLabel('Name').fill('Apollo landing');
  await dialog.getByLabel('Description').fill('Put a team on the moon.');
  await dialog.getByRole('button', { name: 'Create project' }).click();
  await page.waitForURL(/\/projects\/\d+$/);
  const id = Number(page.url().split('/').pop());
  await page.getByRole('heading', { name: 'Apollo landing', level: 1 }).waitFor();

  // edit its state
  await page.getByLabel('State').selectOption('active');
  await page.getByRole('button', { name: 'Save changes' }).click();
  await page.getByRole('status').filter({ hasText: 'Saved' }).waitFor();
  await page.locator('.head-tags .badge-active').waitFor();

  // mark as primary
  await page.getByRole('button', { name: 'Mark as primary' }).click();
  await page.getByRole('button', { name: 'Unmark as primary' }).waitFor();
  await page.locator('.head-tags .badge-primary').waitFor();
  await shot(page, 'project');

  // a reload keeps everything (the session comes back from the refresh cookie)
  await page.reload();
  await page.getByRole('heading', { name: 'Apollo landing', level: 1 }).waitFor();
  assert.equal(await page.getByLabel('State').inputValue(), 'active');
  assert.equal(await page.getByLabel('Description').inputValue(), 'Put a team on the moon.');
  await page.locator('.head-tags .badge-primary').waitFor();
  await page.locator('.head-tags .badge-active').waitFor();

  // the primary shortcut, and the list
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Projects' }).click();
  await page.waitForURL(/\/projects$/);
  await page.locator('.project-item', { hasText: 'Apollo landing' }).locator('.badge-primary').waitFor();
  await shot(page, 'projects');
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Primary' }).click();
  await page.waitForURL(new RegExp(`/projects/${id}$`));
  await page.getByRole('heading', { name: 'Apollo landing', level: 1 }).waitFor();

  // log out; signing up again with the same email shows the server's error at the field
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.waitForURL(/\/login$/);
  await page.goto('/signup');
  await page.getByLabel('Your name').fill('Nina Again');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  const emailField = page.locator('.field', { has: page.getByLabel('Email') });
  await expectText(emailField.locator('.field-error'), 'already exists');
  // logged out for real: a protected page sends to login
  await page.goto(`/projects/${id}`);
  await page.waitForURL(new RegExp(`/login\\?next=%2Fprojects%2F${id}$`));
});

scenario('a stale edit says someone else changed the project and offers to reload', async (open) => {
  const owner = await newUser('stale');
  const project = await newProject(owner, 'Gemini');
  const { page } = await open({ signedInAs: owner });
  await page.goto(`/projects/${project.id}`);
  await page.getByRole('heading', { name: 'Gemini', level: 1 }).waitFor();

  // someone else renames it meanwhile
  const other = await apiCall('PATCH', `/api/projects/${project.id}`, {
    token: owner.token,
    body: { name: 'Gemini II' },
    headers: { 'If-Match': `"${project.version}"` },
  });
  assert.equal(other.status, 200);

  await page.getByLabel('Description').fill('My stale edit');
  await page.getByRole('button', { name: 'Save changes' }).click();
  const notice = page.getByRole('alert').filter({ hasText: 'Someone else changed this project' });
  await notice.waitFor();
  await shot(page, 'project-conflict');
  await notice.getByRole('button', { name: 'Reload project' }).click();
  await notice.waitFor({ state: 'detached' });
  await page.getByRole('heading', { name: 'Gemini II', level: 1 }).waitFor();
  assert.equal(await page.getByLabel('Name').inputValue(), 'Gemini II');
  const now = await apiCall('GET', `/api/projects/${project.id}`, { token: owner.token });
  assert.equal(now.body.project.description, 'Made by the browser tests.', 'the stale edit changed nothing');
});

// ---- chat ---------------------------------------------------------------------

scenario('two browsers in a project room see each other live; a dropped connection fills its gap', async (open) => {
  const owner = await newUser('chatter');
  const project = await newProject(owner, 'Mercury');
  const a = await open({ signedInAs: owner });
  const b = await open({ signedInAs: ADMIN });

  // A's WebSockets pass through a route the test can cut
  const sockets = [];
  await a.page.routeWebSocket(/\/live\?ticket=/, (ws) => {
    ws.connectToServer();
    sockets.push(ws);
  });

  await a.page.goto(`/projects/${project.id}`);
  await b.page.goto(`/projects/${project.id}`);
  const chatA = a.page.locator(`[data-room="project-${project.id}"]`);
  const chatB = b.page.locator(`[data-room="project-${project.id}"]`);
  await chatA.getByRole('status').filter({ hasText: 'Live' }).waitFor();
  await chatB.getByRole('status').filter({ hasText: 'Live' }).waitFor();

  // A sends with Enter; B sees it without a reload, and answers
  await chatA.getByRole('textbox', { name: 'Message', exact: true }).fill('Hello from the owner');
  await chatA.getByRole('textbox', { name: 'Message', exact: true }).press('Enter');
  await expectText(chatB.locator('.message-body'), 'Hello from the owner');
  // (B may see it live before A has the POST's answer)
  await expectValue(chatA.getByRole('textbox', { name: 'Message', exact: true }), '', 'the box is cleared after sending');
  await chatB.getByRole('textbox', { name: 'Message', exact: true }).fill('Hello from the admin');
  await chatB.getByRole('textbox', { name: 'Message', exact: true }).press('Enter');
  await expectText(chatA.locator('.message-body'), 'Hello from the admin');
  assert.equal(await chatA.locator('.message-body', { hasText: 'Hello from the owner' }).count(), 1, 'no duplicates');

  // cut A's connection; what B sends meanwhile reaches A after it reconnects
  assert.ok(sockets.length >= 1);
  await sockets[sockets.length - 1].close();
  await chatA.getByRole('status').filter({ hasText: 'Reconnecting' }).waitFor();
  const missed = await apiCall('POST', `/api/chat/rooms/project-${project.id}/messages`, {
    token: await adminToken(),
    body: { body: 'Sent while you were away', client_msg_id: `gap-${Date.now()}` },
  });
  assert.equal(missed.status, 201);
  await chatA.getByRole('status').filter({ hasText: 'Live' }).waitFor();
  await expectText(chatA.locator('.message-body'), 'Sent while you were away');
  // and live delivery works on the new connection
  await chatB.getByRole('textbox', { name: 'Message', exact: true }).fill('Back online?');
  await chatB.getByRole('textbox', { name: 'Message', exact: true }).press('Enter');
  await expectText(chatA.locator('.message-body'), 'Back online?');
  await shot(a.page, 'project-chat');
});

scenario('the lobby falls back to EventSource when WebSockets never open', async (open) => {
  const user = await newUser('lobbyist');
  const a = await open({ signedInAs: user });
  let refused = 0;
  await a.page.routeWebSocket(/\/live\?ticket=/, (ws) => {
    refused += 1;
    ws.close(); // never opens
  });
  const b = await open({ signedInAs: ADMIN });
  await a.page.goto('/lobby');
  await b.page.goto('/lobby');
  const lobbyA = a.page.locator('[data-room="lobby"]');
  const lobbyB = b.page.locator('[data-room="lobby"]');
  await lobbyA.getByRole('status').filter({ hasText: 'Live' }).waitFor({ timeout: 15000 });
  assert.ok(refused >= 2, 'two WebSocket tries before the fallback');
  await lobbyB.getByRole('status').filter({ hasText: 'Live' }).waitFor();
  const text = `Lobby hello ${Date.now()}`;
  await lobbyB.getByRole('textbox', { name: 'Message', exact: true }).fill(text);
  await lobbyB.getByRole('button', { name: 'Send' }).click();
  await expectText(lobbyA.locator('.message-body'), text);
  await shot(a.page, 'lobby');
});

scenario('messages that arrive while the user is scrolled up get an unread marker', async (open) => {
  const owner = await newUser('reader');
  const project = await newProject(owner, 'Vostok');
  const room = `project-${project.id}`;
  for (let i = 1; i <= 30; i++) {
    const r = await apiCall('POST', `/api/chat/rooms/${room}/messages`, { token: owner.token, body: { body: `Backlog ${i}` } });
    assert.equal(r.status, 201);
  }
  const { page } = await open({ signedInAs: owner });
  await page.goto(`/projects/${project.id}`);
  const chatRoom = page.locator(`[data-room="${room}"]`);
  await chatRoom.getByRole('status').filter({ hasText: 'Live' }).waitFor();
  await expectText(chatRoom.locator('.message-body'), 'Backlog 30');
  await chatRoom.locator('.chat-log').evaluate((el) => {
    el.scrollTop = 0;
    el.dispatchEvent(new Event('scroll'));
  });
  const r = await apiCall('POST', `/api/chat/rooms/${room}/messages`, { token: await adminToken(), body: { body: 'Look down here' } });
  assert.equal(r.status, 201);
  const pill = chatRoom.getByRole('button', { name: '1 new message' });
  await pill.waitFor();
  const marker = chatRoom.locator('.unread-marker');
  await marker.waitFor();
  assert.equal(await marker.locator('xpath=..').locator('.message-body').textContent(), 'Look down here');
  await shot(page, 'chat-unread');
  await pill.click();
  await pill.waitFor({ state: 'detached' });
  assert.ok(
    await chatRoom.locator('.chat-log').evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight < 24),
    'scrolled to the newest message',
  );
});

// ---- the API module -------------------------------------------------------------

scenario('a rejected access token is refreshed once and the call retried; a failed refresh sends to login', async (open) => {
  const user = await newUser('refresher');
  await newProject(user, 'Soyuz');
  const { page, context } = await open({ signedInAs: user });
  await page.goto('/projects');
  await page.locator('.project-item', { hasText: 'Soyuz' }).waitFor();

  // the next projects call goes out with a token the server rejects (401)
  let spoiled = 0;
  const seen = [];
  page.on('response', (res) => {
    if (res.url().includes('/api/')) seen.push(`${res.request().method()} ${new URL(res.url()).pathname} ${res.status()}`);
  });
  await page.route(/\/api\/projects\?/, async (route) => {
    if (spoiled === 0) {
      spoiled += 1;
      await route.continue({ headers: { ...route.request().headers(), authorization: 'Bearer not-a-valid-token' } });
    } else await route.continue();
  });
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Lobby' }).click();
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Projects' }).click();
  await page.locator('.project-item', { hasText: 'Soyuz' }).waitFor();
  assert.deepEqual(
    seen.filter((l) => /projects|refresh/.test(l)),
    ['GET /api/projects 401', 'POST /api/accounts/refresh 200', 'GET /api/projects 200'],
  );

  // without the refresh cookie the session cannot be renewed: to login, and back after it
  await context.clearCookies();
  spoiled = 0;
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Lobby' }).click();
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Projects' }).click();
  await page.waitForURL(/\/login\?next=%2Fprojects$/);
  await page.getByLabel('Email').fill(user.email);
  await page.getByLabel('Password').fill(user.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL(/\/projects$/);
  await page.locator('.project-item', { hasText: 'Soyuz' }).waitFor();
});

// ---- admin ----------------------------------------------------------------------

scenario('an admin writes internal notes; the owner never receives them', async (open) => {
  const owner = await newUser('owner');
  const project = await newProject(owner, `Secret plans ${Date.now()}`);
  const note = `internal-note-${Math.random().toString(36).slice(2)}`;

  const admin = await open({ signedInAs: ADMIN });
  await admin.page.goto('/admin');
  await admin.page.getByRole('heading', { name: 'All projects' }).waitFor();
  const row = admin.page.locator(`[data-project-id="${project.id}"]`);
  await admin.page.locator('[data-project-id]').first().waitFor();
  // the newest project is on the last page: load pages until it shows
  const more = admin.page.getByRole('button', { name: 'Load more projects' });
  for (let i = 0; i < 100 && (await row.count()) === 0; i++) {
    if (await more.isEnabled().catch(() => false)) await more.click({ timeout: 2000 }).catch(() => {});
    else await sleep(100);
  }
  await row.waitFor();
  await row.getByLabel(/Internal notes/).fill(note);
  await row.getByRole('button', { name: 'Save notes' }).click();
  await row.getByRole('status').filter({ hasText: 'Saved' }).waitFor();
  await admin.page.getByRole('heading', { name: 'Users' }).waitFor();
  await admin.page.evaluate(() => window.scrollTo(0, 0));
  await shot(admin.page, 'admin', { fullPage: false });
  const stored = await apiCall('GET', `/api/projects/${project.id}`, { token: await adminToken() });
  assert.equal(stored.body.project.internal_notes, note);

  // the owner's pages: neither the page nor any API answer it got holds the notes
  const own = await open({ signedInAs: owner });
  const bodies = [];
  own.page.on('response', async (res) => {
    if (res.url().includes('/api/projects')) bodies.push(await res.text().catch(() => ''));
  });
  await own.page.goto('/projects');
  await own.page.locator('.project-item', { hasText: 'Secret plans' }).waitFor();
  await own.page.goto(`/projects/${project.id}`);
  await own.page.getByRole('heading', { name: /Secret plans/, level: 1 }).waitFor();
  await own.page.waitForLoadState('networkidle');
  assert.ok(bodies.length >= 2, 'the owner pages loaded projects from the API');
  for (const body of bodies) {
    assert.ok(!body.includes(note), 'no API answer to the owner holds the note');
    assert.ok(!body.includes('internal_notes'), 'no API answer to the owner has the field');
  }
  assert.ok(!(await own.page.content()).includes(note));
  // no admin link, and the admin page refuses
  assert.equal(await own.page.getByRole('link', { name: 'Admin' }).count(), 0);
  await own.page.goto('/admin');
  await own.page.getByRole('heading', { name: 'Not allowed' }).waitFor();
});

scenario('an admin changes a user role and disables the account', async (open) => {
  const user = await newUser('managed');
  const admin = await open({ signedInAs: ADMIN });
  await admin.page.goto('/admin');
  await admin.page.getByRole('searchbox').fill(user.email.slice(0, 20));
  await admin.page.getByRole('button', { name: 'Search' }).click();
  const row = admin.page.locator(`[data-user-id="${user.id}"]`);
  await row.getByLabel(/Role of/).selectOption('admin');
  await row.getByRole('button', { name: 'Disable' }).click();
  await row.locator('.badge-disabled').waitFor();
  let got = await apiCall('GET', `/api/accounts/users/${user.id}`, { token: await adminToken() });
  assert.equal(got.body.user.role, 'admin');
  assert.equal(got.body.user.disabled, true);
  await row.getByRole('button', { name: 'Enable' }).click();
  await row.getByRole('button', { name: 'Disable' }).waitFor();
  await row.getByLabel(/Role of/).selectOption('user');
  await row.getByLabel(/Role of/).and(admin.page.locator(':enabled')).waitFor();
  got = await apiCall('GET', `/api/accounts/users/${user.id}`, { token: await adminToken() });
  assert.equal(got.body.user.role, 'user');
  assert.equal(got.body.user.disabled, false);
});

// ---- components -------------------------------------------------------------------

scenario('a Modal traps focus and closes with Escape; a LoaderButton sends once while busy', async (open) => {
  const user = await newUser('keyboard');
  const { page } = await open({ signedInAs: user });
  await page.goto('/projects');
  const opener = page.getByRole('button', { name: 'New project' });
  await opener.focus();
  await page.keyboard.press('Enter');
  const dialog = page.getByRole('dialog', { name: 'New project' });
  await dialog.waitFor();
  const focusInDialog = () => page.evaluate(() => !!document.activeElement.closest('[role="dialog"]'));
  assert.ok(await focusInDialog(), 'focus moved into the dialog');
  assert.equal(await page.evaluate(() => document.activeElement.name), 'name', 'the first field has focus');
  for (let i = 0; i < 8; i++) {
    await page.keyboard.press('Tab');
    assert.ok(await focusInDialog(), `Tab ${i + 1} stays in the dialog`);
  }
  for (let i = 0; i < 8; i++) {
    await page.keyboard.press('Shift+Tab');
    assert.ok(await focusInDialog(), `Shift+Tab ${i + 1} stays in the dialog`);
  }
  await shot(page, 'modal-new-project');
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached' });
  assert.ok(await opener.evaluate((el) => el === document.activeElement), 'focus returned to the opener');

  // slow the create request down: the button is disabled and busy, and a
  // second click or Enter sends nothing more
  let posts = 0;
  await page.route('**/api/projects', async (route) => {
    if (route.request().method() === 'POST') {
      posts += 1;
      await sleep(1500);
    }
    await route.continue();
  });
  await opener.click();
  await dialog.getByLabel('Name').fill('Slow one');
  const create = dialog.getByRole('button', { name: 'Create project' });
  await create.click();
  await page.waitForFunction(() => {
    const b = [...document.querySelectorAll('[role="dialog"] button')].find((x) => x.textContent.includes('Create project'));
    return b && b.disabled && b.getAttribute('aria-busy') === 'true' && b.querySelector('.spinner');
  });
  await create.click({ force: true }).catch(() => {});
  await dialog.getByLabel('Name').press('Enter');
  await page.waitForURL(/\/projects\/\d+$/);
  await page.getByRole('heading', { name: 'Slow one', level: 1 }).waitFor();
  assert.equal(posts, 1, 'one POST for one project');
  const list = await apiCall('GET', '/api/projects', { token: user.token });
  assert.equal(list.body.projects.length, 1);

  // delete, confirmed in a Modal (Escape first keeps it)
  await page.getByRole('button', { name: 'Delete project' }).click();
  const confirm = page.getByRole('dialog', { name: 'Delete this project?' });
  await confirm.waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Keep it');
  await page.keyboard.press('Escape');
  await confirm.waitFor({ state: 'detached' });
  await page.getByRole('button', { name: 'Delete project' }).click();
  await confirm.getByRole('button', { name: 'Delete project' }).click();
  await page.waitForURL(/\/projects$/);
  await page.getByText('No projects yet.').waitFor();
});

scenario('at 375 px no page scrolls sideways; a deep link reload works', async (open) => {
  const user = await newUser('mobile');
  const project = await newProject(user, 'A project with a rather long name to see how it wraps on a phone');
  const phone = { width: 375, height: 812 };
  const { page } = await open({ signedInAs: user, viewport: phone });
  const noSideScroll = async (where) => {
    const [sw, cw] = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
    assert.ok(sw <= cw, `${where}: content ${sw}px wide in a ${cw}px window`);
  };
  await page.goto('/projects');
  await page.locator('.project-item').first().waitFor();
  await noSideScroll('projects');
  await shot(page, 'mobile-projects');
  await page.goto(`/projects/${project.id}`);
  await page.getByRole('heading', { level: 1 }).waitFor();
  await page.reload();
  await page.getByRole('heading', { name: /rather long name/, level: 1 }).waitFor();
  await noSideScroll('project');
  await shot(page, 'mobile-project');
  await page.goto('/lobby');
  await page.locator('[data-room="lobby"]').getByRole('status').filter({ hasText: 'Live' }).waitFor();
  await noSideScroll('lobby');

  const admin = await open({ signedInAs: ADMIN, viewport: phone });
  await admin.page.goto('/admin');
  await admin.page.getByRole('heading', { name: 'Users' }).waitFor();
  await admin.page.locator('.user-row').first().waitFor();
  const [sw, cw] = await admin.page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
  assert.ok(sw <= cw, `admin: content ${sw}px wide in a ${cw}px window`);
  await shot(admin.page, 'mobile-admin');

  const guest = await open({ viewport: phone });
  await guest.page.goto('/signup');
  await guest.page.getByRole('heading', { name: 'Sign up' }).waitFor();
  const [gw, gc] = await guest.page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
  assert.ok(gw <= gc, 'signup fits');
  await shot(guest.page, 'mobile-signup');
});
