// quality.test.mjs: every page through axe-core (no serious or critical
// violation, light and dark), every account page at 375 and 320 px without sideways
// scroll, and the figures of a stranger's first load (bytes, requests, time
// until the login form takes input) and of each part loaded on demand. The
// figures are printed and written to $PL_SCREENSHOTS/figures.json.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { ADMIN, PHONE, SHOTS, apiCall, axeProblems, newProject, newUser, noSideScroll, scenario, shot } from './lib.mjs';

const DIST = process.env.PL_WEB_ROOT || path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../web/dist');

const STRANGER_PAGES = [
  ['/login', 'Log in'],
  ['/signup', 'Create your account'],
  ['/forgot-password', 'Forgot your password?'],
  ['/reset-password?token=not-a-real-token', 'Choose a new password'],
  ['/verify-email?token=not-a-real-token', 'This link does not work'],
  ['/no/such/page', 'Page not found'],
];
const SETTINGS = [
  ['/settings/profile', 'Profile'],
  ['/settings/email', 'Email address'],
  ['/settings/password', 'Password'],
  ['/settings/sessions', 'Sessions'],
  ['/settings/two-factor', 'Two-factor authentication'],
  ['/settings/delete-account', 'Delete account'],
];

async function ready(page, url, heading) {
  await page.goto(url);
  await page.getByRole('heading', { name: heading }).first().waitFor();
  await page.waitForLoadState('networkidle').catch(() => {});
}

scenario('axe-core: no serious or critical violation on any page, light or dark', async (open) => {
  const user = await newUser('axe');
  const project = await newProject(user, 'Accessible');
  await apiCall('POST', `/api/chat/rooms/project-${project.id}/messages`, { token: user.token, body: { body: 'Hello https://example.com' } });
  const found = [];
  for (const colorScheme of ['light', 'dark']) {
    const guest = await open({ colorScheme });
    for (const [url, heading] of STRANGER_PAGES) {
      await ready(guest.page, url, heading);
      for (const p of await axeProblems(guest.page)) found.push(`${colorScheme} ${url}: ${p}`);
    }
    const signed = await open({ signedInAs: user, colorScheme });
    for (const [url, heading] of [
      ['/projects', 'Projects'],
      [`/projects/${project.id}`, 'Accessible'],
      ['/primary', 'Primary project'],
      ['/lobby', 'Lobby'],
      ...SETTINGS,
    ]) {
      await ready(signed.page, url, heading);
      for (const p of await axeProblems(signed.page)) found.push(`${colorScheme} ${url}: ${p}`);
    }
    // a dialog open
    await signed.page.goto('/projects');
    await signed.page.locator('.page-head').getByRole('button', { name: 'New project' }).click();
    await signed.page.getByRole('dialog', { name: 'New project' }).waitFor();
    for (const p of await axeProblems(signed.page)) found.push(`${colorScheme} new-project dialog: ${p}`);
    const admin = await open({ signedInAs: ADMIN, colorScheme });
    for (const [url, heading] of [
      ['/admin/users', 'Admin'],
      ['/admin/projects', 'Admin'],
      ['/admin/system', 'Service pools, live'],
    ]) {
      await ready(admin.page, url, heading);
      for (const p of await axeProblems(admin.page)) found.push(`${colorScheme} ${url}: ${p}`);
    }
    if (colorScheme === 'dark') {
      await shot(signed.page, 'dark-projects');
      await admin.page.goto('/admin/system');
      await admin.page.locator('.chart canvas').first().waitFor();
      await shot(admin.page, 'dark-system', { fullPage: false });
    }
  }
  assert.deepEqual(found, [], `axe-core found:\n${found.join('\n')}`);
}, { timeout: 240000 });

scenario('every account page at 375 and 320 px: no sideways scroll', async (open) => {
  const user = await newUser('narrow');
  const guest = await open({ viewport: PHONE });
  for (const [url, heading] of STRANGER_PAGES) {
    await ready(guest.page, url, heading);
    await noSideScroll(guest.page, url);
  }
  await shot(guest.page, 'mobile-404');
  await ready(guest.page, '/signup', 'Create your account');
  await shot(guest.page, 'mobile-signup');
  const signed = await open({ signedInAs: user, viewport: PHONE });
  for (const [url, heading] of SETTINGS) {
    await ready(signed.page, url, heading);
    await noSideScroll(signed.page, url);
  }
  await shot(signed.page, 'mobile-settings');
  // the narrowest the docs promise (a long button label wraps inside its card)
  await signed.page.setViewportSize({ width: 320, height: 640 });
  for (const [url, heading] of SETTINGS) {
    await ready(signed.page, url, heading);
    await noSideScroll(signed.page, `${url} at 320 px`);
  }
});

scenario('the admin’s System page draws each pool live from admin/status', async (open) => {
  const admin = await open({ signedInAs: ADMIN });
  const asked = [];
  admin.page.on('request', (r) => {
    if (/\/admin\/status$/.test(r.url())) asked.push(new URL(r.url()).pathname);
  });
  await admin.page.goto('/admin/system');
  // every service of services/list, the one list (the build puts it in), and no other
  const services = fs
    .readFileSync(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../services/list'), 'utf8')
    .replace(/\n$/, '')
    .split('\n');
  for (const svc of services) await admin.page.locator(`[data-service="${svc}"] .chart canvas`).first().waitFor();
  assert.deepEqual(
    await admin.page.locator('[data-service]').evaluateAll((els) => [...new Set(els.map((e) => e.dataset.service))]),
    services,
  );
  const rps = admin.page.locator('[data-service="projects"] [data-stat="rps"]');
  // two readings make a rate
  await admin.page.waitForFunction(() => {
    const el = document.querySelector('[data-service="projects"] [data-stat="rps"]');
    return el && el.textContent !== '–';
  }, null, { timeout: 10000 });
  assert.match(await rps.textContent(), /^\d/);
  assert.ok(
    asked.every((p) => services.some((svc) => p === `/api/${svc}/admin/status`)),
    'only the public admin route is asked',
  );
  assert.ok(!asked.some((p) => p.includes('/_status')));
  await shot(admin.page, 'admin-system', { fullPage: false });
  // at 320 px too: the update interval's long option shrinks to the window
  await admin.page.setViewportSize({ width: 320, height: 640 });
  await admin.page.locator('[data-service="chat"] .chart canvas').first().waitFor();
  await noSideScroll(admin.page, '/admin/system at 320 px');
});

scenario('figures: a stranger’s first load, and the parts loaded on demand', async (open) => {
  const { page, consoleErrors } = await open();
  const responses = [];
  page.on('requestfinished', async (req) => {
    const sizes = await req.sizes().catch(() => null);
    const res = await req.response();
    responses.push({ url: new URL(req.url()).pathname, status: res ? res.status() : 0, bytes: sizes ? sizes.responseBodySize + sizes.responseHeadersSize : 0, body: sizes ? sizes.responseBodySize : 0 });
  });
  const t0 = Date.now();
  await page.goto('/login', { waitUntil: 'commit' });
  await page.getByLabel('Email').waitFor();
  const interactive = await page.evaluate(() => performance.now());
  const wall = Date.now() - t0;
  await page.waitForLoadState('networkidle');
  assert.ok(!responses.some((r) => r.url.includes('/refresh')), 'a stranger does not call refresh');
  assert.deepEqual(consoleErrors, [], 'nothing red in the console');
  const firstLoad = responses.filter((r) => !r.url.startsWith('/api/'));
  const bytes = firstLoad.reduce((a, r) => a + r.bytes, 0);
  const body = firstLoad.reduce((a, r) => a + r.body, 0);
  const loaded = new Set(firstLoad.map((r) => path.basename(r.url)));
  const lazy = [];
  for (const f of fs.readdirSync(path.join(DIST, 'assets')).sort()) {
    if (!/\.(js|css)$/.test(f) || loaded.has(f)) continue;
    const raw = fs.readFileSync(path.join(DIST, 'assets', f));
    lazy.push({ file: f, bytes: raw.length, gzip: zlib.gzipSync(raw, { level: 6 }).length });
  }
  const figures = {
    first_load: { requests: firstLoad.length, transferred_bytes: bytes, body_bytes: body, files: firstLoad.map((r) => `${r.url} ${r.body}`) },
    interactive_ms: Math.round(interactive),
    interactive_wall_ms: wall,
    lazy: lazy.filter((l) => l.bytes > 1500),
  };
  fs.writeFileSync(path.join(SHOTS, 'figures.json'), `${JSON.stringify(figures, null, 2)}\n`);
  console.log(`# first load for a stranger: ${firstLoad.length} requests, ${bytes} bytes transferred (${body} in bodies)`);
  console.log(`# login form interactive after ${Math.round(interactive)} ms (page clock), ${wall} ms (wall)`);
  for (const l of figures.lazy) console.log(`# on demand: ${l.file} ${l.bytes} bytes, ${l.gzip} gzipped`);
  assert.ok(firstLoad.length <= 5, `five requests at most, as docs/web-client.md says (${firstLoad.length})`);
});
