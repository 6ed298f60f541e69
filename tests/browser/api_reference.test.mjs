// api_reference.test.mjs: the API reference page (/api-reference, the web
// build's own page over /api/openapi.json) in a real browser: it renders
// every operation of the document under the site's Content-Security-Policy,
// with no violation, no page error and nothing fetched from another origin.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { chromium } from 'playwright-core';

const BASE = process.env.PL_BASE_URL.replace(/\/$/, '');
const SHOTS = process.env.PL_SCREENSHOTS;

let browser;

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.PL_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-sync'],
  });
});

after(async () => {
  if (browser) await browser.close();
});

test('the API reference renders every operation under the CSP, from this origin only', async (t) => {
  const doc = await (await fetch(`${BASE}/api/openapi.json`)).json();
  const operations = Object.values(doc.paths).reduce((n, item) => n + Object.keys(item).length, 0);
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const problems = [];
  const origins = new Set();
  page.on('console', (msg) => {
    if (msg.type() === 'error' && /Content Security Policy|Refused to/i.test(msg.text())) problems.push(msg.text());
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('request', (req) => {
    const u = new URL(req.url());
    if (u.protocol.startsWith('http')) origins.add(u.origin);
  });
  try {
    const res = await page.goto(`${BASE}/api-reference`);
    assert.equal(res.status(), 200);
    assert.match(res.headers()['content-security-policy'], /script-src 'self'/);
    await page.waitForSelector('.opblock', { timeout: 20000 });
    assert.equal(await page.locator('.opblock').count(), operations, 'one block per operation');
    assert.match(await page.locator('.info .title').innerText(), /Pilotlight API/);
    // an operation opens with its parameters and answers
    await page.locator('#operations-projects-prj_project_update .opblock-summary').click();
    await page.waitForSelector('#operations-projects-prj_project_update .responses-table', { timeout: 10000 });
    assert.match(await page.locator('#operations-projects-prj_project_update').innerText(), /version_conflict/);
    if (SHOTS) await page.screenshot({ path: path.join(SHOTS, 'api-reference.png') });
    assert.deepEqual(problems, [], 'no CSP violations or page errors');
    assert.deepEqual([...origins], [new URL(BASE).origin], 'nothing from another origin');
  } catch (err) {
    if (SHOTS) await page.screenshot({ path: path.join(SHOTS, 'failure-api-reference.png') }).catch(() => {});
    throw err;
  } finally {
    await context.close();
  }
});
