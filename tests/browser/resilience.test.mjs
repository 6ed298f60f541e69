// resilience.test.mjs: the client when the network or the session goes away:
// a blip while a room opens, offline with a pending message, a long gap in a
// room that was empty, the lobby's count after a blip and after a visit, a
// user disabled or logged out elsewhere, rate limits and server errors in
// human words, a ?next= to another host, a chat resync event, a message
// never delivered live that the next one names.
import assert from 'node:assert/strict';
import { ADMIN, accountMenu, adminToken, apiCall, expectText, newProject, newUser, scenario, shot, sleep, until } from './lib.mjs';

scenario('a network blip while opening a room: it recovers by itself, never "Not allowed"', async (open) => {
  const owner = await newUser('blip');
  const project = await newProject(owner, 'Blip');
  const room = `project-${project.id}`;
  assert.equal((await apiCall('POST', `/api/chat/rooms/${room}/messages`, { token: owner.token, body: { body: 'Before the blip' } })).status, 201);
  const { page } = await open({ signedInAs: owner });
  let failed = 0;
  await page.route(new RegExp(`/api/chat/rooms/${room}/messages\\?`), async (route) => {
    if (failed < 2) {
      failed += 1;
      await route.abort('internetdisconnected');
    } else await route.continue();
  });
  await page.goto(`/projects/${project.id}`);
  const chat = page.locator(`[data-room="${room}"]`);
  const status = chat.getByRole('status');
  const seen = new Set();
  await until(async () => {
    seen.add(await status.textContent());
    return (await status.textContent()) === 'Live';
  }, 'the room comes live by itself', 12000);
  assert.ok(failed >= 2, 'the history failed twice first');
  assert.ok(![...seen].some((s) => /Not allowed/.test(s)), `never shown as a refusal (saw ${[...seen].join(', ')})`);
  await expectText(chat.locator('.message-body'), 'Before the blip');
  assert.equal(await chat.getByRole('textbox', { name: 'Message', exact: true }).isEnabled(), true);
});

// droppingLive(page, room): the room's WebSocket through a route that drops
// what the server sends while .dropping is true; .opened counts connections,
// .toPage sends to the page as the server would.
async function droppingLive(page, room) {
  const live = { dropping: false, opened: 0, toPage: null };
  await page.routeWebSocket(new RegExp(`/rooms/${room}/live\\?ticket=`), (ws) => {
    live.opened += 1;
    const server = ws.connectToServer();
    server.onMessage((m) => {
      if (!live.dropping) ws.send(m);
    });
    live.toPage = ws;
  });
  return live;
}

// aRoomMissingOne(open, name, body): a new user's project room, open and
// live, in which body was posted and stored but its live delivery dropped
// (as when chat could not publish it): {owner, room, chat, live}.
async function aRoomMissingOne(open, name, body) {
  const owner = await newUser(name);
  const project = await newProject(owner, name);
  const room = `project-${project.id}`;
  const { page } = await open({ signedInAs: owner });
  const live = await droppingLive(page, room);
  await page.goto(`/projects/${project.id}`);
  const chat = page.locator(`[data-room="${room}"]`);
  await chat.getByRole('status').filter({ hasText: 'Live' }).waitFor();
  live.dropping = true;
  assert.equal((await apiCall('POST', `/api/chat/rooms/${room}/messages`, { token: owner.token, body: { body } })).status, 201);
  await sleep(1000);
  assert.equal(await chat.locator('.message-body', { hasText: body }).count(), 0, 'not delivered live');
  live.dropping = false;
  return { owner, room, chat, live };
}

scenario('a resync event: the room reads what its live connection missed, and stays live', async (open) => {
  const { owner, room, chat, live } = await aRoomMissingOne(open, 'resync', 'Missed live');
  // the server's resync event: the client reads history after its last message
  live.toPage.send(JSON.stringify({ resync: true }));
  await expectText(chat.locator('.message-body'), 'Missed live');
  assert.equal(live.opened, 1, 'no reconnect: the same subscription goes on');
  const next = await apiCall('POST', `/api/chat/rooms/${room}/messages`, { token: owner.token, body: { body: 'Live again' } });
  assert.equal(next.status, 201);
  await expectText(chat.locator('.message-body'), 'Live again');
  assert.equal(await chat.locator('.message-body', { hasText: 'Missed live' }).count(), 1, 'once');
  assert.equal(await chat.getByRole('status').textContent(), 'Live');
});

scenario('a message never delivered live: the next one names it (prev_id) and the room reads it from history', async (open) => {
  // stored, never delivered (as when the worker that stored it died before publishing), and no resync event
  const { owner, room, chat } = await aRoomMissingOne(open, 'previd', 'Never published');
  assert.equal((await apiCall('POST', `/api/chat/rooms/${room}/messages`, { token: owner.token, body: { body: 'Names it' } })).status, 201);
  await expectText(chat.locator('.message-body').last(), 'Names it');
  await expectText(chat.locator('.message-body', { hasText: 'Never published' }), 'Never published');
  assert.deepEqual(await chat.locator('.message-body').allTextContents(), ['Never published', 'Names it'], 'both, once, in order');
});

scenario('offline then online: the badge says so, a message waits as pending and is delivered once', async (open) => {
  const owner = await newUser('offline');
  const project = await newProject(owner, 'Offline');
  const room = `project-${project.id}`;
  const { page, context } = await open({ signedInAs: owner });
  await page.goto(`/projects/${project.id}`);
  const chat = page.locator(`[data-room="${room}"]`);
  await chat.getByRole('status').filter({ hasText: 'Live' }).waitFor();

  await context.setOffline(true);
  await page.locator('.topbar').getByRole('status').filter({ hasText: 'Offline — retrying' }).waitFor();
  await chat.getByRole('status').filter({ hasText: 'Offline — retrying' }).waitFor();
  const text = `Written offline ${Date.now()}`;
  const box = chat.getByRole('textbox', { name: 'Message', exact: true });
  await box.fill(text);
  await box.press('Enter');
  const pending = chat.locator('[data-pending]', { hasText: text });
  await pending.waitFor();
  await expectText(pending.locator('.pending-state'), /Waiting to send|Sending/);
  assert.equal(await box.inputValue(), '', 'the box is free for the next message');
  await shot(page, 'chat-offline-pending');

  await context.setOffline(false);
  await chat.getByRole('status').filter({ hasText: 'Live' }).waitFor({ timeout: 20000 });
  await pending.waitFor({ state: 'detached', timeout: 20000 });
  await expectText(chat.locator('.message-body'), text);
  await page.locator('.topbar').getByRole('status').filter({ hasText: 'Offline' }).waitFor({ state: 'detached' });
  const history = await apiCall('GET', `/api/chat/rooms/${room}/messages`, { token: owner.token });
  assert.equal(history.body.messages.filter((m) => m.body === text).length, 1, 'stored once');
  assert.equal(await chat.locator('.message-body', { hasText: text }).count(), 1, 'shown once');
});

scenario('a room empty until a long gap offline: the newest messages, and the rest through "Load earlier messages"', async (open) => {
  const owner = await newUser('emptygap');
  const project = await newProject(owner, 'Empty gap');
  const room = `project-${project.id}`;
  const { page, context } = await open({ signedInAs: owner });
  let reads = 0; // the room's history reads the server answered
  page.on('response', (r) => {
    if (r.request().method() === 'GET' && new URL(r.url()).pathname === `/api/chat/rooms/${room}/messages`) reads++;
  });
  await page.goto(`/projects/${project.id}`);
  const chat = page.locator(`[data-room="${room}"]`);
  await chat.getByRole('status').filter({ hasText: 'Live' }).waitFor();
  // the read that follows the live connection's opening answered before the
  // gap begins (served after the first post, it would give the page that
  // post, and the rest would come after it, with nothing earlier to load)
  await until(async () => reads >= 2, "the room's history read on load and again when live", 5000);
  await context.setOffline(true);
  await chat.getByRole('status').filter({ hasText: 'Offline — retrying' }).waitFor();
  const N = 70;
  for (let i = 1; i <= N; i++) {
    const r = await apiCall('POST', `/api/chat/rooms/${room}/messages`, { token: owner.token, body: { body: `gap ${i}` } });
    assert.equal(r.status, 201);
  }
  await context.setOffline(false);
  await chat.getByRole('status').filter({ hasText: 'Live' }).waitFor({ timeout: 20000 });
  await expectText(chat.locator('.message-body'), `gap ${N}`);
  const shown = async () =>
    (await chat.locator('.message-body').allInnerTexts()).filter((t) => t.startsWith('gap ')).map((t) => Number(t.slice(4)));
  // the newest page came; what was before it must be reachable, not silently missing
  await chat.getByRole('button', { name: 'Load earlier messages' }).click();
  await until(async () => (await shown()).length === N, `every message of the gap is shown (${(await shown()).length} of ${N})`, 8000);
  assert.equal(new Set(await shown()).size, N, 'each once');
});

scenario('the lobby badge: a blip on its first read counts nothing old, and what was read in the lobby is not counted again', async (open) => {
  const other = await newUser('talker');
  for (let i = 0; i < 3; i++) await apiCall('POST', '/api/chat/rooms/lobby/messages', { token: other.token, body: { body: `Old news ${i}` } });
  const user = await newUser('badge');
  const { page } = await open({ signedInAs: user });
  let blips = 0;
  await page.route(/\/api\/chat\/rooms\/lobby\/messages\?limit=1$/, (route) => (blips++ === 0 ? route.abort('internetdisconnected') : route.continue()));
  const nav = page.getByRole('navigation', { name: 'Main' }).first();
  await page.goto('/projects');
  await page.getByRole('heading', { name: 'Projects' }).waitFor();
  await sleep(2500); // the hub's live connection is open and has read the lobby
  assert.ok(blips >= 1, 'the first read failed');
  assert.equal(await nav.locator('.count-badge').count(), 0, 'nothing old is counted as new');
  assert.doesNotMatch(await page.title(), /^\(\d+\)/);

  await nav.getByRole('link', { name: 'Lobby' }).click();
  const lobby = page.locator('[data-room="lobby"]');
  await lobby.getByRole('status').filter({ hasText: 'Live' }).waitFor();
  const seen = `Read in the lobby ${Date.now()}`;
  await apiCall('POST', '/api/chat/rooms/lobby/messages', { token: other.token, body: { body: seen } });
  await expectText(lobby.locator('.message-body'), seen);
  await nav.getByRole('link', { name: 'Projects' }).click();
  await page.getByRole('heading', { name: 'Projects' }).waitFor();
  await sleep(2500);
  assert.equal(await nav.locator('.count-badge').count(), 0, 'a message read in the lobby is not new after leaving it');
  // and a message that is new still counts
  await apiCall('POST', '/api/chat/rooms/lobby/messages', { token: other.token, body: { body: `Really new ${Date.now()}` } });
  await expectText(nav.locator('.count-badge'), '1');
});

scenario('a ?next= that the browser reads as another host falls back to the projects', async (open) => {
  const user = await newUser('next');
  const { page, context } = await open();
  let left = null;
  await context.route((url) => url.hostname.endsWith('evil.example'), (route) => {
    left = route.request().url();
    return route.fulfill({ status: 200, contentType: 'text/plain', body: 'elsewhere' });
  });
  for (const next of ['/%5Cevil.example/x', '/%09/evil.example']) {
    await page.goto(`/login?next=${next}`);
    await page.getByLabel('Email').fill(user.email);
    await page.getByLabel('Password').fill(user.password);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForURL(/\/projects$/);
    await page.getByRole('heading', { name: 'Projects' }).waitFor();
    assert.equal(left, null, 'never another host');
    await accountMenu(page, 'Log out');
    await page.waitForURL(/\/login\?reason=logout/);
  }
});

scenario('a user disabled in another browser is sent to login within 5 s, with the reason', async (open) => {
  const user = await newUser('disabled');
  const { page } = await open({ signedInAs: user });
  await page.goto('/projects');
  await page.getByRole('heading', { name: 'Projects' }).waitFor();
  await sleep(1500); // the page has settled: its live connection is open
  const t0 = Date.now();
  const r = await apiCall('PATCH', `/api/accounts/users/${user.id}`, { token: await adminToken(), body: { disabled: true } });
  assert.equal(r.status, 200);
  // (disabling revokes the refresh tokens, so the refresh is refused as for any ended session: the
  // client cannot tell "disabled" from "ended" until the user tries to log in again)
  await page.waitForURL(/\/login\?.*reason=(disabled|ended)/, { timeout: 5000 });
  const took = Date.now() - t0;
  console.log(`# disabled user at the login page after ${took} ms`);
  assert.ok(took < 5000);
  await page.getByText(/Your session has ended|Your account has been disabled/).waitFor();
  await page.getByLabel('Email').fill(user.email);
  await page.getByLabel('Password').fill(user.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expectText(page.getByRole('alert'), 'This account has been disabled');
  await shot(page, 'login-disabled');
});

scenario('logging out in one tab, or everywhere, sends every open tab to login with the reason', async (open) => {
  const user = await newUser('tabs');
  const a = await open({ signedInAs: user });
  await a.page.goto('/projects');
  await a.page.getByRole('heading', { name: 'Projects' }).waitFor();
  const second = await a.context.newPage();
  await second.goto('/lobby');
  await second.getByRole('heading', { name: 'Lobby', exact: true }).waitFor();
  await accountMenu(a.page, 'Log out');
  await second.waitForURL(/\/login\?.*reason=elsewhere/);
  await second.getByText('You logged out in another tab.').waitFor();

  // another browser logs out everywhere: this one notices by itself
  const b = await open({ signedInAs: user });
  await b.page.goto('/projects');
  await b.page.getByRole('heading', { name: 'Projects' }).waitFor();
  await sleep(1500);
  const login = await apiCall('POST', '/api/accounts/login', { body: { email: user.email, password: user.password } });
  const r = await apiCall('DELETE', '/api/accounts/me/sessions', { token: login.body.access_token });
  assert.equal(r.status, 204);
  await b.page.waitForURL(/\/login\?.*reason=ended/, { timeout: 8000 });
});

scenario('rate limits and server failures are said in human words, with the wait', async (open) => {
  const { page } = await open();
  await page.goto('/login');
  let answer = { status: 429, code: 'rate_limited', message: 'too many requests from this address; retry later', retry: '7' };
  await page.route('**/api/accounts/login', (route) =>
    route.fulfill({
      status: answer.status,
      contentType: 'application/json',
      headers: answer.retry ? { 'Retry-After': answer.retry } : {},
      body: JSON.stringify({ error: { code: answer.code, message: answer.message } }),
    }),
  );
  await page.getByLabel('Email').fill('someone@example.com');
  await page.getByLabel('Password').fill('whatever it is');
  await page.getByRole('button', { name: 'Log in' }).click();
  await expectText(page.getByRole('alert'), 'Too many requests in a short time. Try again in 7 seconds.');
  for (const [status, code, message] of [
    [500, 'internal_error', 'internal error'],
    [503, 'service_unavailable', 'the service is not reachable'],
    [502, 'bad_gateway', 'bad gateway'],
  ]) {
    answer = { status, code, message };
    await page.getByRole('button', { name: 'Log in' }).click();
    const alert = page.getByRole('alert');
    await until(async () => !(await alert.textContent()).includes('Too many'), `${code} replaced the message`);
    const shown = await alert.textContent();
    assert.ok(!shown.includes(message), `the server's "${message}" is not shown (${shown})`);
    assert.match(shown, /Try again|Something went wrong/);
  }
});

scenario('the admin link of a user made admin shows without a reload', async (open) => {
  // (covered with the admin's confirmations in app.test.mjs; here through the API alone)
  const user = await newUser('promoted');
  const { page } = await open({ signedInAs: user });
  await page.goto('/projects');
  await page.getByRole('heading', { name: 'Projects' }).waitFor();
  const r = await apiCall('PATCH', `/api/accounts/users/${user.id}`, { token: await adminToken(), body: { role: 'admin' } });
  assert.equal(r.status, 200);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Primary' }).click();
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Admin' }).click();
  await page.waitForURL(/\/admin\/users$/);
  await page.locator('.user-row').first().waitFor();
  assert.equal(ADMIN.email.length > 0, true);
});
