// accounts.test.mjs: every account page against the accounts lifecycle API:
// confirm an address from its mailed link, forgot and reset a password,
// settings (profile, email, password, sessions), two-factor authentication
// (enrol with the QR code's secret, log in with a recovery code, new recovery
// codes), deleting an account (its lobby messages then read "Deleted user").
import assert from 'node:assert/strict';
import {
  ADMIN,
  PASSWORD,
  accountMenu,
  apiCall,
  expectText,
  mailedLink,
  mailsTo,
  newUser,
  scenario,
  shot,
  totp,
  uniqueEmail,
  until,
} from './lib.mjs';

scenario('sign-up’s mailed link confirms the address; the banner goes; the link leaves the URL', async (open) => {
  const { page } = await open();
  const email = uniqueEmail('verify');
  await page.goto('/signup');
  await page.getByLabel('Your name').fill('Vera Verify');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.waitForURL(/\/projects$/);
  const banner = page.getByRole('region', { name: 'Confirm your email' });
  await banner.waitFor();
  const link = await mailedLink(email, '/verify-email');
  await page.goto(link);
  await page.getByRole('heading', { name: 'Email address confirmed' }).waitFor();
  assert.equal(new URL(page.url()).search, '', 'the token is gone from the URL');
  await page.getByRole('link', { name: 'Go to your projects' }).click();
  await page.waitForURL(/\/projects$/);
  await banner.waitFor({ state: 'detached' });
  // the same link again: used
  await page.goto(link);
  await page.getByRole('heading', { name: 'This link does not work' }).waitFor();
  await page.getByText('This link was already used.').waitFor();
});

scenario('forgot password: the mailed link sets a new password, then logging in works with it', async (open) => {
  const user = await newUser('forgot');
  const { page } = await open();
  await page.goto('/login');
  await page.getByLabel('Email').fill(user.email);
  await page.getByRole('link', { name: 'Forgot password?' }).click();
  await page.waitForURL(/\/forgot-password\?email=/);
  assert.equal(await page.getByLabel('Email').inputValue(), user.email);
  const before = mailsTo(user.email).length;
  await page.getByRole('button', { name: 'Send the link' }).click();
  await page.getByRole('heading', { name: 'Check your email' }).waitFor();
  const link = await mailedLink(user.email, '/reset-password', { after: before });
  await page.goto(link);
  await page.getByRole('heading', { name: 'Choose a new password' }).waitFor();
  assert.equal(new URL(page.url()).search, '', 'the token is gone from the URL');
  await page.getByLabel('New password', { exact: true }).fill('a brand new password');
  await page.getByLabel('Repeat the new password').fill('a brand new password');
  await page.getByRole('button', { name: 'Set the new password' }).click();
  await page.waitForURL(/\/login\?reason=reset$/);
  await page.getByText('Your password has been changed').waitFor();
  await page.getByLabel('Email').fill(user.email);
  await page.getByLabel('Password').fill('a brand new password');
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL(/\/projects$/);
  // a made-up link says so (on sending) and offers a new one
  await page.goto('/reset-password?token=not-a-real-token-at-all-not-a-real-token-xx');
  await page.getByLabel('New password', { exact: true }).fill('yet another password');
  await page.getByLabel('Repeat the new password').fill('yet another password');
  await page.getByRole('button', { name: 'Set the new password' }).click();
  await page.getByRole('heading', { name: 'This link does not work' }).waitFor();
  await page.getByRole('link', { name: 'Send me a new link' }).waitFor();
});

scenario('settings: name, email change by link, password, sessions with “log out everywhere”', async (open) => {
  const user = await newUser('settler');
  const { page } = await open({ signedInAs: user });
  await page.goto('/projects');
  await accountMenu(page, 'Settings');
  await page.waitForURL(/\/settings\/profile$/);
  await page.getByLabel('Your name').fill('Sett Ler');
  await page.getByRole('button', { name: 'Save' }).click();
  await expectText(page.locator('.toast'), 'Profile saved');
  await until(async () => (await page.locator('.whoami-name').textContent()) === 'Sett Ler', 'the header has the new name');

  // email: a link to the new address; nothing changes until it is opened
  await page.getByRole('link', { name: 'Email address' }).click();
  const newEmail = uniqueEmail('moved');
  await page.getByLabel('New email address').fill(newEmail);
  await page.getByLabel('Current password').fill('wrong password here');
  await page.getByRole('button', { name: 'Send a confirmation link' }).click();
  await expectText(page.locator('.field-error'), 'Your current password is not right.');
  await page.getByLabel('Current password').fill(user.password);
  await page.getByRole('button', { name: 'Send a confirmation link' }).click();
  await page.getByRole('status').filter({ hasText: newEmail }).waitFor();
  await page.goto(await mailedLink(newEmail, '/verify-email'));
  await page.getByRole('heading', { name: 'Email address confirmed' }).waitFor();
  await page.getByText(newEmail).first().waitFor();

  // password: the other sessions end, this one stays
  const other = await apiCall('POST', '/api/accounts/login', { body: { email: newEmail, password: user.password } });
  assert.equal(other.status, 200);
  await page.goto('/settings/password');
  await page.getByLabel('Current password').fill(user.password);
  await page.getByLabel('New password', { exact: true }).fill('another good password');
  await page.getByLabel('Repeat the new password').fill('another good password');
  await page.getByRole('button', { name: 'Change password' }).click();
  await expectText(page.locator('.toast'), 'Password changed');

  // sessions: this browser, and one more to end
  const third = await apiCall('POST', '/api/accounts/login', { body: { email: newEmail, password: 'another good password' } });
  assert.equal(third.status, 200);
  await page.getByRole('link', { name: 'Sessions' }).click();
  const items = page.locator('.session-item');
  await until(async () => (await items.count()) >= 2, 'two sessions listed');
  await page.locator('.session-item', { hasText: 'This browser' }).waitFor();
  await shot(page, 'settings-sessions');
  await page.locator('.session-item', { hasNotText: 'This browser' }).first().getByRole('button', { name: 'End' }).click();
  await page.getByRole('alertdialog', { name: 'End this session?' }).getByRole('button', { name: 'End session' }).click();
  await expectText(page.locator('.toast'), 'Session ended');
  await page.getByRole('button', { name: 'Log out everywhere' }).click();
  await page.getByRole('alertdialog', { name: 'Log out everywhere?' }).getByRole('button', { name: 'Log out everywhere' }).click();
  await page.waitForURL(/\/login\?.*reason=everywhere/);
  const me = await apiCall('GET', '/api/accounts/me', { token: third.body.access_token });
  await until(async () => (await apiCall('GET', '/api/accounts/me', { token: third.body.access_token })).status === 401, 'every session ended', 5000);
  assert.ok(me.status === 200 || me.status === 401);
});

scenario('two-factor: enrol with the QR code’s secret, keep the recovery codes, log in with one, make new ones, delete the account', async (open) => {
  const user = await newUser('twofa');
  const { page } = await open({ signedInAs: user });
  // a message of this user in the lobby, to see it orphaned after the deletion
  const said = `Soon deleted ${Date.now()}`;
  assert.equal((await apiCall('POST', '/api/chat/rooms/lobby/messages', { token: user.token, body: { body: said } })).status, 201);

  await page.goto('/settings/two-factor');
  await page.getByLabel('Current password').fill(user.password);
  await page.getByRole('button', { name: 'Set up two-factor authentication' }).click();
  const qr = page.locator('.qr svg');
  await qr.waitFor();
  assert.ok((await qr.locator('path').count()) >= 1, 'the QR code is drawn here');
  const secret = (await page.locator('[data-secret]').textContent()).trim();
  assert.match(secret, /^[A-Z2-7]{32}$/);
  await shot(page, 'settings-two-factor');
  await page.getByLabel('Code from your app').fill(totp(secret));
  await page.getByRole('button', { name: 'Turn on' }).click();
  const codes = page.getByRole('list', { name: 'Recovery codes' }).locator('code');
  await until(async () => (await codes.count()) === 10, 'ten recovery codes');
  const recovery = (await codes.first().textContent()).trim();
  const old = (await codes.allTextContents()).map((c) => c.trim());
  const download = page.waitForEvent('download');
  await page.getByRole('button', { name: 'Download' }).click();
  assert.equal((await download).suggestedFilename(), 'pilotlight-recovery-codes.txt');
  await page.getByRole('button', { name: 'I have saved them' }).click();
  await page.getByRole('button', { name: 'Turn off two-factor authentication' }).waitFor();

  // log out, and in again: the second step, with a recovery code
  await accountMenu(page, 'Log out');
  await page.waitForURL(/\/login/);
  await page.getByLabel('Email').fill(user.email);
  await page.getByLabel('Password').fill(user.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { name: 'Two-factor authentication' }).waitFor();
  await page.getByRole('button', { name: 'Use a recovery code instead' }).click();
  await page.getByLabel('Recovery code').fill('aaaa-bbbb-cccc-dddd');
  await page.getByRole('button', { name: 'Verify and log in' }).click();
  await expectText(page.locator('.field-error'), 'That code is not right.');
  await page.getByLabel('Recovery code').fill(recovery);
  await page.getByRole('button', { name: 'Verify and log in' }).click();
  await page.waitForURL(/\/projects$/);

  // new recovery codes, with another old one: every old code is replaced
  await page.goto('/settings/two-factor');
  await page.getByLabel('Current password').fill(user.password);
  await page.getByLabel('Code from your app, or a recovery code').fill(old[1]);
  await page.getByRole('button', { name: 'New recovery codes' }).click();
  await page.getByRole('alertdialog', { name: 'Make new recovery codes?' }).getByRole('button', { name: 'Make new codes' }).click();
  await until(async () => (await codes.count()) === 10, 'ten new recovery codes');
  const renewed = (await codes.allTextContents()).map((c) => c.trim());
  assert.equal(renewed.filter((c) => old.includes(c)).length, 0, 'the new codes are all new');
  await page.getByRole('button', { name: 'I have saved them' }).click();
  await page.getByRole('button', { name: 'Turn off two-factor authentication' }).waitFor();

  // delete the account: password and a second factor, confirmed
  await page.goto('/settings/delete-account');
  await page.getByLabel('Current password').fill(user.password);
  // the next time step's code: a newer step than the one enrolment used, within the drift allowed
  await page.getByLabel('Code from your app, or a recovery code').fill(totp(secret, Date.now() + 30000));
  await page.getByRole('button', { name: 'Delete my account' }).click();
  const ask = page.getByRole('alertdialog', { name: 'Delete your account for good?' });
  await ask.getByRole('button', { name: 'Delete my account' }).click();
  await page.waitForURL(/\/login\?reason=deleted$/);
  await page.getByText('Your account has been deleted').waitFor();
  const login = await apiCall('POST', '/api/accounts/login', { body: { email: user.email, password: user.password } });
  assert.equal(login.status, 401);

  // in the lobby, the message stays without its author's name
  const admin = await open({ signedInAs: ADMIN });
  await admin.page.goto('/lobby');
  const msg = admin.page.locator('.message', { hasText: said });
  await msg.waitFor();
  await until(async () => (await admin.page.locator('.message-deleted').count()) >= 1, '"Deleted user" shown');
});
