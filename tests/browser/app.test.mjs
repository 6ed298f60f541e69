// app.test.mjs: the web client's main paths in a real browser, against the
// stack of `./pilotlight test` (nginx serving web/dist in front of the real
// services): serving, sign-up to a project, stale edits, live chat, the API
// module's refresh, admin, dialogs, and small screens. Helpers in lib.mjs.
import assert from 'node:assert/strict';
import {
  ADMIN,
  BASE,
  PASSWORD,
  PHONE,
  accountMenu,
  adminToken,
  apiCall,
  expectText,
  expectValue,
  newProject,
  newUser,
  noSideScroll,
  scenario,
  shot,
  sleep,
  uniqueEmail,
  until,
} from './lib.mjs';

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
  assert.equal(await page.title(), 'Not found · Pilotlight');
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

  // nothing is judged before it is touched; then the rules are the server's, in its own words
  await page.getByLabel('Your name').focus();
  await page.getByLabel('Email').focus();
  await page.getByLabel('Password').focus();
  await page.getByLabel('Your name').focus();
  assert.equal(await page.locator('.field-error').count(), 0, 'no error on fields only passed through');
  await page.getByLabel('Email').fill('not-an-email');
  await page.getByLabel('Email').blur();
  await expectText(page.locator('.field-error'), 'not a valid email address');
  assert.match(await page.locator('.field-hint').first().textContent(), /At least 10 characters/);
  await page.getByLabel('Password').fill('short');
  await page.getByLabel('Password').blur();
  await expectText(page.locator('.field-error'), 'Use at least 10 characters');
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
  await page.getByRole('region', { name: 'Confirm your email' }).waitFor();

  // create in the dialog, from the empty state's own button
  await page.locator('.empty').getByRole('button', { name: 'New project' }).click();
  const dialog = page.getByRole('dialog', { name: 'New project' });
  await dialog.getByLabel('Name').fill('Apollo landing');
  await dialog.getByLabel('Description').fill('Put a team on the moon.');
  await dialog.getByRole('button', { name: 'Create project' }).click();
  await page.waitForURL(/\/projects\/\d+$/);
  const id = Number(page.url().split('/').pop());
  await page.getByRole('heading', { name: 'Apollo landing', level: 1 }).waitFor();
  await until(async () => (await page.title()) === 'Apollo landing · Pilotlight', 'the tab names the project');
  await expectText(page.locator('.toast'), 'Project created');

  // edit its state: "Saved" once saved, gone with the next edit
  await page.getByLabel('State').selectOption('active');
  await page.getByRole('button', { name: 'Save changes' }).click();
  const saved = page.locator('.form-actions .saved');
  await saved.waitFor();
  await page.locator('.head-tags .badge-active').waitFor();
  await page.getByLabel('Description').fill('Put a team on the moon. Soon.');
  await saved.waitFor({ state: 'detached' });
  await page.getByText('Unsaved changes').waitFor();
  await page.getByRole('button', { name: 'Discard' }).click();

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

  // the primary shortcut, and the list
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Projects' }).click();
  await page.waitForURL(/\/projects$/);
  await page.locator('.project-item', { hasText: 'Apollo landing' }).locator('.badge-primary').waitFor();
  await shot(page, 'projects');
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Primary' }).click();
  await page.waitForURL(new RegExp(`/projects/${id}$`));
  await page.getByRole('heading', { name: 'Apollo landing', level: 1 }).waitFor();

  // log out; signing up again with the same email offers to log in instead
  await accountMenu(page, 'Log out');
  await page.waitForURL(/\/login\?reason=logout$/);
  await page.getByText('You have logged out.').waitFor();
  await page.goto('/signup');
  await page.getByLabel('Your name').fill('Nina Again');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  const emailField = page.locator('.field', { has: page.getByLabel('Email') });
  await expectText(emailField.locator('.field-error'), 'already exists');
  await page.getByRole('link', { name: `Log in as ${email}` }).click();
  await page.waitForURL(/\/login\?email=/);
  assert.equal(await page.getByLabel('Email').inputValue(), email);
  // logged out for real: a protected page sends to login
  await page.goto(`/projects/${id}`);
  await page.waitForURL(new RegExp(`/login\\?next=%2Fprojects%2F${id}$`));
});

scenario('projects: newest first, search and sort, 20 at a time', async (open) => {
  const user = await newUser('lister');
  for (let i = 1; i <= 23; i++) await newProject(user, `Item ${String(i).padStart(2, '0')}${i === 7 ? ' zebra' : ''}`);
  const { page } = await open({ signedInAs: user });
  await page.goto('/projects');
  const items = page.locator('.project-item .project-link');
  await until(async () => (await items.count()) === 20, 'the first 20');
  assert.equal(await items.first().textContent(), 'Item 23', 'newest first');
  await page.getByRole('button', { name: /Show more \(3 left\)/ }).click();
  await until(async () => (await items.count()) === 23, 'all 23');
  await page.getByRole('searchbox', { name: 'Search projects' }).fill('zebra');
  await until(async () => (await items.count()) === 1, 'one match');
  assert.equal(await items.first().textContent(), 'Item 07 zebra');
  await page.getByRole('searchbox', { name: 'Search projects' }).fill('nothing like it');
  await page.getByRole('button', { name: 'Clear the search' }).click();
  await page.getByLabel('Sort projects').selectOption('oldest');
  await until(async () => (await items.first().textContent()) === 'Item 01', 'oldest first');
});

scenario('a stale edit offers reload or overwrite; leaving with unsaved edits asks first', async (open) => {
  const owner = await newUser('stale');
  const project = await newProject(owner, 'Gemini');
  const { page } = await open({ signedInAs: owner });
  await page.goto(`/projects/${project.id}`);
  await page.getByRole('heading', { name: 'Gemini', level: 1 }).waitFor();

  const renameElsewhere = async (name, version) => {
    const other = await apiCall('PATCH', `/api/projects/${project.id}`, {
      token: owner.token,
      body: { name },
      headers: { 'If-Match': `"${version}"` },
    });
    assert.equal(other.status, 200);
  };
  await renameElsewhere('Gemini II', project.version);

  await page.getByLabel('Description').fill('My stale edit');
  await page.getByRole('button', { name: 'Save changes' }).click();
  const notice = page.getByRole('alert').filter({ hasText: 'Someone else changed this project' });
  await notice.getByRole('button', { name: 'Reload project' }).waitFor();
  await shot(page, 'project-conflict', { fullPage: false });
  await notice.getByRole('button', { name: 'Reload project' }).click();
  await notice.waitFor({ state: 'detached' });
  await page.getByRole('heading', { name: 'Gemini II', level: 1 }).waitFor();
  assert.equal(await page.getByLabel('Name').inputValue(), 'Gemini II');
  let now = await apiCall('GET', `/api/projects/${project.id}`, { token: owner.token });
  assert.equal(now.body.project.description, 'Made by the browser tests.', 'the stale edit changed nothing');

  // again, and this time overwrite
  await renameElsewhere('Gemini III', now.body.project.version);
  await page.getByLabel('Description').fill('Mine wins');
  await page.getByRole('button', { name: 'Save changes' }).click();
  await notice.waitFor();
  await notice.getByRole('button', { name: 'Overwrite with my changes' }).click();
  await notice.waitFor({ state: 'detached' });
  now = await apiCall('GET', `/api/projects/${project.id}`, { token: owner.token });
  assert.equal(now.body.project.description, 'Mine wins');

  // unsaved edits: a link asks first; "Stay" keeps them, "Leave" goes
  await page.getByLabel('Name').fill('Half typed');
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Lobby' }).click();
  const ask = page.getByRole('alertdialog', { name: 'Leave without saving?' });
  await ask.waitFor();
  await ask.getByRole('button', { name: 'Stay on this page' }).click();
  assert.equal(await page.getByLabel('Name').inputValue(), 'Half typed');
  assert.match(page.url(), new RegExp(`/projects/${project.id}$`));
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Lobby' }).click();
  await ask.getByRole('button', { name: 'Leave and discard' }).click();
  await page.waitForURL(/\/lobby$/);
});

// ---- chat ---------------------------------------------------------------------

scenario('two browsers in a project room see each other live; a dropped connection fills its gap', async (open) => {
  const owner = await newUser('chatter');
  const project = await newProject(owner, 'Mercury');
  const a = await open({ signedInAs: owner });
  const b = await open({ signedInAs: ADMIN });

  // A's WebSockets to the room pass through a route the test can cut
  const sockets = [];
  await a.page.routeWebSocket(new RegExp(`/rooms/project-${project.id}/live\\?ticket=`), (ws) => {
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
  const boxA = chatA.getByRole('textbox', { name: 'Message', exact: true });
  const boxB = chatB.getByRole('textbox', { name: 'Message', exact: true });
  await boxA.fill('Hello from the owner');
  await boxA.press('Enter');
  await expectText(chatB.locator('.message-body'), 'Hello from the owner');
  await expectValue(boxA, '', 'the box is cleared after sending');
  await boxB.fill('Hello from the admin');
  await boxB.press('Enter');
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
  await boxB.fill('Back online?');
  await boxB.press('Enter');
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
  // the box is pinned to the bottom of the window, the log fills the rest
  const [boxBottom, winHeight] = await a.page.evaluate(() => [
    document.querySelector('.chat-compose').getBoundingClientRect().bottom,
    window.innerHeight,
  ]);
  assert.ok(boxBottom <= winHeight && boxBottom > winHeight - 120, `the message box sits at the bottom (${boxBottom} of ${winHeight})`);
  await shot(a.page, 'lobby');
});

scenario('chat: links are clickable and safe, days are divided, an author’s messages are grouped, right-to-left text reads right to left', async (open) => {
  const owner = await newUser('linker');
  const project = await newProject(owner, 'Links');
  const room = `project-${project.id}`;
  for (const body of ['See https://example.com/docs?a=1 please', 'and javascript:alert(1) is just text', 'مرحبا بالعالم!', 'third in a row'])
    assert.equal((await apiCall('POST', `/api/chat/rooms/${room}/messages`, { token: owner.token, body: { body } })).status, 201);
  const { page } = await open({ signedInAs: owner });
  await page.goto(`/projects/${project.id}`);
  const chat = page.locator(`[data-room="${room}"]`);
  await expectText(chat.locator('.message-body'), 'third in a row');
  const link = chat.locator('.message-body a');
  assert.equal(await link.count(), 1, 'one link, and not the javascript: text');
  assert.equal(await link.getAttribute('href'), 'https://example.com/docs?a=1');
  assert.equal(await link.getAttribute('target'), '_blank');
  assert.match(await link.getAttribute('rel'), /noopener/);
  await chat.getByRole('separator', { name: 'Today' }).waitFor();
  assert.equal(await chat.locator('.message-author').count(), 1, 'four messages of one author in a minute: one header');
  // each message and the box take their direction from their text (dir="auto"): Arabic from the right, "!" at its end
  const direction = (loc) => loc.evaluate((el) => getComputedStyle(el).direction);
  assert.equal(await direction(chat.locator('.message-body', { hasText: 'مرحبا' })), 'rtl');
  assert.equal(await direction(chat.locator('.message-body', { hasText: 'third in a row' })), 'ltr');
  const box = chat.getByRole('textbox', { name: 'Message', exact: true });
  await box.fill('שלום, world?');
  assert.equal(await direction(box), 'rtl');
});

scenario('unread messages: a marker in the room, a badge in the nav, a count in the tab title', async (open) => {
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
  const admin = await adminToken();
  const r = await apiCall('POST', `/api/chat/rooms/${room}/messages`, { token: admin, body: { body: 'Look down here' } });
  assert.equal(r.status, 201);
  const pill = chatRoom.getByRole('button', { name: '1 new message' });
  await pill.waitFor();
  const marker = chatRoom.locator('.unread-marker');
  await marker.waitFor();
  assert.equal(await marker.locator('xpath=..').locator('.message-body').textContent(), 'Look down here');
  await until(async () => (await page.title()).startsWith('(1) Vostok'), 'the tab title counts the unread message');
  await shot(page, 'chat-unread');
  await pill.click();
  await pill.waitFor({ state: 'detached' });

  // outside the lobby, its new messages count on the nav's Lobby link
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Projects' }).click();
  await page.waitForURL(/\/projects$/);
  await sleep(1500); // the hub's live connection to the lobby
  const posted = await apiCall('POST', '/api/chat/rooms/lobby/messages', { token: admin, body: { body: `Lobby news ${Date.now()}` } });
  assert.equal(posted.status, 201);
  const lobbyLink = page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: /Lobby/ });
  await until(async () => /1 unread/.test((await lobbyLink.innerHTML()) || ''), 'the nav shows 1 unread in the lobby', 8000);
  await until(async () => (await page.title()).startsWith('(1) Projects'), 'and the title');
  await lobbyLink.click();
  await page.waitForURL(/\/lobby$/);
  await until(async () => !(await page.title()).startsWith('('), 'read once the lobby is open');
});

// ---- the API module -------------------------------------------------------------

scenario('a rejected access token is refreshed once and the call retried; a failed refresh sends to login', async (open) => {
  const user = await newUser('refresher');
  await newProject(user, 'Soyuz');
  const vega = await newProject(user, 'Vega');
  const { page, context } = await open({ signedInAs: user });
  await page.goto('/projects');
  await page.locator('.project-item', { hasText: 'Soyuz' }).waitFor();

  let spoiled = 0;
  const seen = [];
  page.on('response', (res) => {
    if (res.url().includes('/api/')) seen.push(`${res.request().method()} ${new URL(res.url()).pathname} ${res.status()}`);
  });
  await page.route(/\/api\/projects\/\d+$/, async (route) => {
    if (spoiled === 0) {
      spoiled += 1;
      await route.continue({ headers: { ...route.request().headers(), authorization: 'Bearer not-a-valid-token' } });
    } else await route.continue();
  });
  await page.locator('.project-item').getByRole('link', { name: 'Soyuz' }).click();
  await page.getByRole('heading', { name: 'Soyuz', level: 1 }).waitFor();
  const lines = seen.filter((l) => /projects\/\d+|refresh/.test(l));
  assert.equal(lines.length, 3, lines.join('; '));
  assert.match(lines[0], /^GET \/api\/projects\/\d+ 401$/);
  assert.equal(lines[1], 'POST /api/accounts/refresh 200');
  assert.match(lines[2], /^GET \/api\/projects\/\d+ 200$/);

  // without the refresh cookie the session cannot be renewed: to login with the reason, and back after it
  await context.clearCookies();
  spoiled = 0;
  await page.getByRole('link', { name: 'Projects' }).first().click();
  await page.locator('.project-item').getByRole('link', { name: 'Vega' }).click();
  await page.waitForURL(new RegExp(`/login\\?next=%2Fprojects%2F${vega.id}&reason=ended$`));
  await page.getByText('Your session has ended').waitFor();
  await page.getByLabel('Email').fill(user.email);
  await page.getByLabel('Password').fill(user.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { name: 'Vega', level: 1 }).waitFor();
});

// ---- admin ----------------------------------------------------------------------

scenario('an admin writes internal notes; the owner never receives them; owners have names', async (open) => {
  const owner = await newUser('owner');
  const project = await newProject(owner, `Secret plans ${Date.now()}`);
  const note = `internal-note-${Math.random().toString(36).slice(2)}`;

  const admin = await open({ signedInAs: ADMIN });
  await admin.page.goto('/admin');
  await admin.page.waitForURL(/\/admin\/users$/);
  await admin.page.getByRole('link', { name: 'Projects' }).last().click();
  await admin.page.waitForURL(/\/admin\/projects$/);
  await admin.page.getByRole('searchbox', { name: 'Search projects' }).fill(project.name);
  const row = admin.page.locator(`[data-project-id="${project.id}"]`);
  await row.waitFor();
  await expectText(row.locator('.owner'), `by ${owner.name}`);
  await row.getByLabel(/Internal notes/).fill(note);
  await row.getByRole('button', { name: 'Save notes' }).click();
  await row.getByRole('status').filter({ hasText: 'Saved' }).waitFor();
  assert.equal(await admin.page.title(), 'Projects · Admin · Pilotlight');
  await shot(admin.page, 'admin-projects', { fullPage: false });
  const stored = await apiCall('GET', `/api/projects/${project.id}`, { token: await adminToken() });
  assert.equal(stored.body.project.internal_notes, note);

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
  assert.equal(await own.page.getByRole('link', { name: 'Admin' }).count(), 0);
  await own.page.goto('/admin');
  await own.page.getByRole('heading', { name: 'Not allowed' }).waitFor();
});

scenario('admin actions are confirmed and reported; no Disable on one’s own row; a promoted user sees Admin at once', async (open) => {
  const user = await newUser('managed');
  const managed = await open({ signedInAs: user });
  await managed.page.goto('/projects');
  await managed.page.getByRole('heading', { name: 'Projects' }).waitFor();
  assert.equal(await managed.page.getByRole('link', { name: 'Admin' }).count(), 0);

  const admin = await open({ signedInAs: ADMIN });
  await admin.page.goto('/admin/users');
  const adminId = (await apiCall('GET', '/api/accounts/me', { token: await adminToken() })).body.user.id;
  await admin.page.getByRole('searchbox').fill(ADMIN.email);
  const own = admin.page.locator(`[data-user-id="${adminId}"]`);
  await own.waitFor();
  assert.equal(await own.getByRole('button', { name: 'Disable' }).count(), 0, 'no Disable on the admin’s own row');
  await admin.page.getByRole('searchbox').fill(user.email);
  const row = admin.page.locator(`[data-user-id="${user.id}"]`);
  await row.getByLabel(/Role of/).selectOption('admin');
  const ask = admin.page.getByRole('alertdialog', { name: 'Make this user an admin?' });
  await ask.getByRole('button', { name: 'Cancel' }).click();
  assert.equal(await row.getByLabel(/Role of/).inputValue(), 'user', 'cancelled: nothing changed');
  await row.getByLabel(/Role of/).selectOption('admin');
  await ask.getByRole('button', { name: 'Make admin' }).click();
  await expectText(admin.page.locator('.toast'), `${user.name} is now an admin`);
  await shot(admin.page, 'admin-users', { fullPage: false });

  // the promoted user sees the Admin link on the next page, with no reload
  await managed.page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Lobby' }).click();
  await managed.page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Admin' }).waitFor();

  await row.getByRole('button', { name: 'Disable' }).click();
  await admin.page.getByRole('alertdialog', { name: 'Disable this account?' }).getByRole('button', { name: 'Disable account' }).click();
  await row.locator('.badge-disabled').waitFor();
  await expectText(admin.page.locator('.toast'), 'is disabled and logged out');
  let got = await apiCall('GET', `/api/accounts/users/${user.id}`, { token: await adminToken() });
  assert.equal(got.body.user.role, 'admin');
  assert.equal(got.body.user.disabled, true);
  await row.getByRole('button', { name: 'Enable' }).click();
  await admin.page.getByRole('alertdialog', { name: 'Enable this account?' }).getByRole('button', { name: 'Enable' }).click();
  await row.getByRole('button', { name: 'Disable' }).waitFor();
  await row.getByLabel(/Role of/).selectOption('user');
  await admin.page.getByRole('alertdialog').getByRole('button', { name: 'Remove admin rights' }).click();
  await expectText(admin.page.locator('.toast'), 'is no longer an admin');
  got = await apiCall('GET', `/api/accounts/users/${user.id}`, { token: await adminToken() });
  assert.equal(got.body.user.role, 'user');
  assert.equal(got.body.user.disabled, false);
});

// ---- dialogs and buttons ---------------------------------------------------------------

scenario('a dialog traps focus and closes with Escape; a LoaderButton sends once while busy; a delete is confirmed', async (open) => {
  const user = await newUser('keyboard');
  await newProject(user, 'Existing');
  const { page } = await open({ signedInAs: user });
  await page.goto('/projects');
  const opener = page.locator('.page-head').getByRole('button', { name: 'New project' });
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
  await until(() => opener.evaluate((el) => el === document.activeElement), 'focus returned to the opener');

  // slow the create request down: busy, and a second click or Enter sends nothing more
  let posts = 0;
  const keys = new Set();
  await page.route('**/api/projects', async (route) => {
    if (route.request().method() === 'POST') {
      posts += 1;
      keys.add(route.request().headers()['idempotency-key']);
      await new Promise((r) => setTimeout(r, 1500));
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
  assert.equal(keys.size, 1);
  assert.match([...keys][0], /^[0-9a-f]{32}$/, 'the create carries an Idempotency-Key');
  const list = await apiCall('GET', '/api/projects', { token: user.token });
  assert.equal(list.body.projects.length, 2);

  // delete, confirmed (Escape first keeps it), then a toast says it is done
  await page.getByRole('button', { name: 'Delete project' }).click();
  const confirm = page.getByRole('alertdialog', { name: 'Delete this project?' });
  await confirm.waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Keep it');
  await page.keyboard.press('Escape');
  await confirm.waitFor({ state: 'detached' });
  await page.getByRole('button', { name: 'Delete project' }).click();
  await confirm.getByRole('button', { name: 'Delete project' }).click();
  await page.waitForURL(/\/projects$/);
  await expectText(page.locator('.toast'), 'Project deleted');
  await page.locator('.project-item', { hasText: 'Existing' }).waitFor();
  assert.equal(await page.locator('.project-item', { hasText: 'Slow one' }).count(), 0);
});

// ---- small screens --------------------------------------------------------------------

scenario('at 375 px: one-row header with a menu, chat tabs on a project, no sideways scroll', async (open) => {
  const user = await newUser('mobile');
  const project = await newProject(user, 'A project with a rather long name to see how it wraps on a phone');
  const { page } = await open({ signedInAs: user, viewport: PHONE });
  await page.goto('/projects');
  await page.locator('.project-item').first().waitFor();
  const header = await page.locator('.topbar').boundingBox();
  assert.ok(header.height <= 60, `the header is one row (${header.height}px)`);
  await noSideScroll(page, 'projects');
  await shot(page, 'mobile-projects');
  await page.getByRole('button', { name: 'Menu' }).click();
  await page.getByRole('menuitem', { name: 'Lobby' }).click();
  await page.waitForURL(/\/lobby$/);
  await page.locator('[data-room="lobby"]').getByRole('status').filter({ hasText: 'Live' }).waitFor();
  const compose = await page.locator('.chat-compose').boundingBox();
  assert.ok(compose.y + compose.height <= 812 && compose.y > 812 - 140, `the lobby's box is at the bottom (${compose.y})`);
  await noSideScroll(page, 'lobby');
  await shot(page, 'mobile-lobby');

  await page.goto(`/projects/${project.id}`);
  await page.getByRole('heading', { name: /rather long name/, level: 1 }).waitFor();
  await page.getByRole('tab', { name: 'Details' }).waitFor();
  assert.ok(await page.getByLabel('Name').isVisible(), 'details first');
  await page.getByRole('tab', { name: /Chat/ }).click();
  const box = page.getByRole('textbox', { name: 'Message', exact: true });
  await box.waitFor();
  const top = (await page.locator('[data-room]').boundingBox()).y;
  assert.ok(top < 500, `the chat starts near the top (${top}px), not under the form`);
  await noSideScroll(page, 'project');
  await shot(page, 'mobile-project-chat');

  const admin = await open({ signedInAs: ADMIN, viewport: PHONE });
  await admin.page.goto('/admin/users');
  await admin.page.locator('.user-row').first().waitFor();
  assert.ok((await admin.page.locator('.user-row').first().boundingBox()).y < 400, 'users come first, not after every project');
  await noSideScroll(admin.page, 'admin');
  await shot(admin.page, 'mobile-admin');
});
