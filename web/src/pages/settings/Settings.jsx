// Settings.jsx: the account's pages (loaded on demand): profile, email
// address, password, sessions (end one, log out everywhere), two-factor
// authentication (enrol with a QR code drawn here from the otpauth URI,
// recovery codes shown once with copy and download; turn off), and deleting
// the account.
import { useState } from 'react';
import { NavLink, Outlet } from 'react-router';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { QRCodeSVG } from 'qrcode.react';
import {
  Copy,
  Download,
  KeyRound,
  Mail,
  MonitorSmartphone,
  ShieldCheck,
  Trash2,
  UserRound,
} from 'lucide-react';
import { accounts } from '../../api.js';
import { useConfirm } from '../../components/Confirm.jsx';
import Field, { FormError, useForm } from '../../components/Field.jsx';
import LoaderButton, { useSubmit } from '../../components/LoaderButton.jsx';
import { toast } from '../../components/toast.js';
import { Loading, Notice, useUnsavedGuard } from '../../components/UI.jsx';
import { humanError } from '../../lib/errors.js';
import { ago } from '../../lib/lists.js';
import { useTitle } from '../../lib/store.js';
import { useSession } from '../../session.jsx';
import { PASSWORD_HINT, codeProblem, emailProblem, lengthProblem, passwordProblem } from '../../validate.js';

const SECTIONS = [
  ['profile', 'Profile', UserRound],
  ['email', 'Email address', Mail],
  ['password', 'Password', KeyRound],
  ['sessions', 'Sessions', MonitorSmartphone],
  ['two-factor', 'Two-factor authentication', ShieldCheck],
  ['delete-account', 'Delete account', Trash2],
];

export function SettingsLayout() {
  return (
    <section className="page settings">
      <h1>Settings</h1>
      <div className="settings-grid">
        <nav aria-label="Settings" className="settings-nav">
          <ul>
            {SECTIONS.map(([path, label, Icon]) => (
              <li key={path}>
                <NavLink to={`/settings/${path}`}>
                  <Icon aria-hidden="true" size={16} />
                  <span>{label}</span>
                </NavLink>
              </li>
            ))}
          </ul>
        </nav>
        <div className="settings-body">
          <Outlet />
        </div>
      </div>
    </section>
  );
}

function Panel({ title, description, children }) {
  useTitle(title);
  return (
    <div className="card settings-panel">
      <h2>{title}</h2>
      {description && <p className="muted">{description}</p>}
      {children}
    </div>
  );
}

export function ProfilePage() {
  const { user, setUser } = useSession();
  const form = useForm({ display_name: user.display_name }, {
    display_name: (v) => lengthProblem(v.trim(), { min: 1, max: 100, label: 'Your name' }),
  });
  const dirty = form.values.display_name !== user.display_name;
  useUnsavedGuard(dirty);
  const [submit, busy] = useSubmit(async () => {
    if (!form.validate()) return;
    try {
      const data = await accounts.updateMe({ display_name: form.values.display_name.trim() });
      setUser(data.user);
      form.setValues({ display_name: data.user.display_name });
      toast('Profile saved');
    } catch (err) {
      form.fail(err);
    }
  });
  return (
    <Panel title="Profile" description="Your name is shown to others next to your chat messages.">
      <form className="form" onSubmit={submit} noValidate>
        <FormError>{form.formError}</FormError>
        <Field label="Your name" autoComplete="name" maxLength={100} {...form.field('display_name')} />
        <div className="form-actions">
          <LoaderButton type="submit" className="btn-primary" loading={busy} disabled={!dirty}>
            Save
          </LoaderButton>
        </div>
      </form>
    </Panel>
  );
}

export function EmailPage() {
  const { user } = useSession();
  const [pending, setPending] = useState(null);
  const form = useForm({ email: '', current_password: '' }, {
    email: (v) => emailProblem(v.trim()),
    current_password: (v) => (v ? null : 'Enter your current password.'),
  });
  const [submit, busy] = useSubmit(async () => {
    if (!form.validate()) return;
    try {
      const data = await accounts.changeEmail(form.values.email.trim(), form.values.current_password);
      setPending(data.pending_email);
      form.setValues({ email: '', current_password: '' });
    } catch (err) {
      form.fail(err);
    }
  });
  return (
    <Panel title="Email address" description="Where Pilotlight sends links and notices, and what you log in with.">
      <p>
        Now: <strong>{user.email}</strong>{' '}
        {user.email_verified ? <span className="badge badge-ok">Confirmed</span> : <span className="badge badge-warn">Not confirmed</span>}
      </p>
      {pending && (
        <Notice tone="ok" role="status">
          We sent a link to <strong>{pending}</strong>. Your address changes when you open it (within 24 hours).
        </Notice>
      )}
      <form className="form" onSubmit={submit} noValidate>
        <FormError>{form.formError}</FormError>
        <Field label="New email address" type="email" autoComplete="email" {...form.field('email')} />
        <Field label="Current password" type="password" autoComplete="current-password" {...form.field('current_password')} />
        <div className="form-actions">
          <LoaderButton type="submit" className="btn-primary" loading={busy}>
            Send a confirmation link
          </LoaderButton>
        </div>
      </form>
    </Panel>
  );
}

export function PasswordPage() {
  const { user } = useSession();
  const form = useForm({ current_password: '', password: '', confirm: '' }, {
    current_password: (v) => (v ? null : 'Enter your current password.'),
    password: (v) => passwordProblem(v, user.email),
    confirm: (v, all) => (v === all.password ? null : 'The two passwords are not the same.'),
  });
  const [submit, busy] = useSubmit(async () => {
    if (!form.validate()) return;
    try {
      await accounts.updateMe({ password: form.values.password, current_password: form.values.current_password });
      form.setValues({ current_password: '', password: '', confirm: '' });
      toast('Password changed', { description: 'Your other devices have been logged out.' });
    } catch (err) {
      form.fail(err);
    }
  });
  return (
    <Panel title="Password" description="Changing it logs you out everywhere else; this browser stays logged in.">
      <form className="form" onSubmit={submit} noValidate>
        <FormError>{form.formError}</FormError>
        <Field label="Current password" type="password" autoComplete="current-password" {...form.field('current_password')} />
        <Field label="New password" type="password" autoComplete="new-password" hint={PASSWORD_HINT} {...form.field('password')} />
        <Field label="Repeat the new password" type="password" autoComplete="new-password" {...form.field('confirm')} />
        <div className="form-actions">
          <LoaderButton type="submit" className="btn-primary" loading={busy}>
            Change password
          </LoaderButton>
        </div>
      </form>
    </Panel>
  );
}

/** "Chrome on Linux" from a User-Agent, or the first words of it. */
function device(ua) {
  if (!ua) return 'Unknown device';
  const browser = /Edg\//.test(ua) ? 'Edge' : /Firefox\//.test(ua) ? 'Firefox' : /Chrom(e|ium)\//.test(ua) ? 'Chrome' : /Safari\//.test(ua) ? 'Safari' : null;
  const os = /Android/.test(ua) ? 'Android' : /iPhone|iPad/.test(ua) ? 'iOS' : /Windows/.test(ua) ? 'Windows' : /Mac OS X/.test(ua) ? 'macOS' : /Linux/.test(ua) ? 'Linux' : null;
  if (browser && os) return `${browser} on ${os}`;
  return ua.length > 40 ? `${ua.slice(0, 40)}…` : ua;
}

export function SessionsPage() {
  const { endSession } = useSession();
  const confirm = useConfirm();
  const queryClient = useQueryClient();
  const { data, error, isPending } = useQuery({ queryKey: ['sessions'], queryFn: accounts.sessions });
  const end = async (s) => {
    const yes = await confirm({
      title: s.current ? 'Log out of this browser?' : 'End this session?',
      body: s.current ? 'You will need to log in again here.' : `${device(s.user_agent)} will be logged out within a few seconds.`,
      confirmLabel: s.current ? 'Log out' : 'End session',
      danger: true,
    });
    if (!yes) return;
    try {
      await accounts.endSession(s.id);
      if (s.current) endSession('logout');
      else {
        toast('Session ended', { description: device(s.user_agent) });
        queryClient.invalidateQueries({ queryKey: ['sessions'] });
      }
    } catch (err) {
      toast(humanError(err), { tone: 'error' });
      queryClient.invalidateQueries({ queryKey: ['sessions'] });
    }
  };
  const everywhere = async () => {
    const yes = await confirm({
      title: 'Log out everywhere?',
      body: 'Every browser and device logged in to your account, this one included, will be logged out.',
      confirmLabel: 'Log out everywhere',
      danger: true,
    });
    if (!yes) return;
    try {
      await accounts.endAllSessions();
      endSession('everywhere');
    } catch (err) {
      toast(humanError(err), { tone: 'error' });
    }
  };
  return (
    <Panel title="Sessions" description="The browsers and devices logged in to your account.">
      <FormError>{error}</FormError>
      {isPending && <Loading />}
      {data && (
        <ul className="session-list">
          {data.sessions.map((s) => (
            <li key={s.id} className="session-item" data-session-id={s.id}>
              <MonitorSmartphone aria-hidden="true" size={20} className="session-icon" />
              <div className="session-text">
                <strong>{device(s.user_agent)}</strong> {s.current && <span className="badge badge-ok">This browser</span>}
                <span className="muted small">
                  {s.address ? `From ${s.address} · ` : ''}active {ago(s.last_used_at)} · since {ago(s.created_at)}
                </span>
              </div>
              <button type="button" className="btn btn-small btn-ghost" onClick={() => end(s)}>
                {s.current ? 'Log out' : 'End'}
              </button>
            </li>
          ))}
        </ul>
      )}
      <div className="form-actions">
        <button type="button" className="btn btn-danger" onClick={everywhere}>
          Log out everywhere
        </button>
      </div>
    </Panel>
  );
}

function RecoveryCodes({ codes, onDone }) {
  const text = `Pilotlight recovery codes\nEach works once, when you cannot use your app.\n\n${codes.join('\n')}\n`;
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(codes.join('\n'));
      toast('Recovery codes copied');
    } catch {
      toast('Copying is not allowed here: select the codes and copy them.', { tone: 'error' });
    }
  };
  const download = () => {
    const url = URL.createObjectURL(new Blob([text], { type: 'text/plain' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = 'pilotlight-recovery-codes.txt';
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  };
  return (
    <div className="recovery">
      <Notice tone="ok" role="status">
        Two-factor authentication is on. Save these recovery codes now: they are shown only this once, and each lets you
        log in once without your app.
      </Notice>
      <ol className="recovery-codes" aria-label="Recovery codes">
        {codes.map((c) => (
          <li key={c}>
            <code>{c}</code>
          </li>
        ))}
      </ol>
      <div className="form-actions">
        <button type="button" className="btn" onClick={copy}>
          <Copy aria-hidden="true" size={16} /> Copy
        </button>
        <button type="button" className="btn" onClick={download}>
          <Download aria-hidden="true" size={16} /> Download
        </button>
        <button type="button" className="btn btn-primary" onClick={onDone}>
          I have saved them
        </button>
      </div>
    </div>
  );
}

function Enrol({ setCodes }) {
  const { setUser } = useSession();
  const [enrolment, setEnrolment] = useState(null);
  const pw = useForm({ current_password: '' }, { current_password: (v) => (v ? null : 'Enter your current password.') });
  const code = useForm({ code: '' }, { code: codeProblem });
  const [start, starting] = useSubmit(async () => {
    if (!pw.validate()) return;
    try {
      setEnrolment(await accounts.mfaEnrol(pw.values.current_password));
    } catch (err) {
      pw.fail(err);
    }
  });
  const [confirmCode, confirming] = useSubmit(async () => {
    if (!code.validate()) return;
    try {
      const data = await accounts.mfaConfirm(code.values.code.replace(/\s+/g, ''));
      setCodes(data.recovery_codes);
      setUser(data.user);
    } catch (err) {
      code.fail(err);
    }
  });
  if (!enrolment)
    return (
      <form className="form" onSubmit={start} noValidate>
        <p>With two-factor authentication on, logging in needs a code from an app on your phone as well as your password.</p>
        <FormError>{pw.formError}</FormError>
        <Field label="Current password" type="password" autoComplete="current-password" {...pw.field('current_password')} />
        <div className="form-actions">
          <LoaderButton type="submit" className="btn-primary" loading={starting}>
            Set up two-factor authentication
          </LoaderButton>
        </div>
      </form>
    );
  return (
    <form className="form" onSubmit={confirmCode} noValidate>
      <ol className="steps">
        <li>
          <p>Scan this QR code with your authenticator app (Google Authenticator, 1Password, Aegis, …).</p>
          <div className="qr">
            <QRCodeSVG value={enrolment.otpauth_uri} size={176} marginSize={2} title="QR code for your authenticator app" />
          </div>
          <p className="muted small">
            Cannot scan it? Type this key instead: <code className="secret" data-secret>{enrolment.secret}</code>
          </p>
        </li>
        <li>
          <p>Enter the 6-digit code the app shows.</p>
          <FormError>{code.formError}</FormError>
          <Field label="Code from your app" inputMode="numeric" autoComplete="one-time-code" maxLength={12} {...code.field('code')} />
        </li>
      </ol>
      <div className="form-actions">
        <LoaderButton type="submit" className="btn-primary" loading={confirming}>
          Turn on
        </LoaderButton>
      </div>
    </form>
  );
}

// MFA on: new recovery codes, or off; both take the password and a code.
function Manage({ setCodes }) {
  const { setUser } = useSession();
  const confirm = useConfirm();
  const form = useForm({ current_password: '', code: '' }, {
    current_password: (v) => (v ? null : 'Enter your current password.'),
    code: (v) => (v.trim() ? null : 'Enter a code from your app, or a recovery code.'),
  });
  // the password and the code or recovery code, as the API takes them
  const proof = () => {
    const c = form.values.code.replace(/\s+/g, '');
    return {
      current_password: form.values.current_password,
      ...(/^\d{6}$/.test(c) ? { code: c } : { recovery_code: form.values.code.trim() }),
    };
  };
  const failed = (err) => {
    form.fail(err, (e) => (e.field === 'recovery_code' ? humanError(e) : null));
    if (err.field === 'recovery_code') form.setError('code', humanError(err));
  };
  const [submit, busy] = useSubmit(async () => {
    if (!form.validate()) return;
    const yes = await confirm({
      title: 'Turn two-factor authentication off?',
      body: 'Logging in will need only your password.',
      confirmLabel: 'Turn off',
      danger: true,
    });
    if (!yes) return;
    try {
      const data = await accounts.mfaDisable(proof());
      setUser(data.user);
      toast('Two-factor authentication is off');
    } catch (err) {
      failed(err);
    }
  });
  const [renew, renewing] = useSubmit(async () => {
    if (!form.validate()) return;
    const yes = await confirm({
      title: 'Make new recovery codes?',
      body: 'Your old recovery codes, used or not, will stop working.',
      confirmLabel: 'Make new codes',
    });
    if (!yes) return;
    try {
      const data = await accounts.mfaRecoveryCodes(proof());
      setUser(data.user);
      setCodes(data.recovery_codes);
    } catch (err) {
      failed(err);
    }
  });
  return (
    <form className="form" onSubmit={submit} noValidate>
      <Notice tone="ok">Two-factor authentication is on: logging in needs a code from your app.</Notice>
      <FormError>{form.formError}</FormError>
      <Field label="Current password" type="password" autoComplete="current-password" {...form.field('current_password')} />
      <Field label="Code from your app, or a recovery code" autoComplete="one-time-code" {...form.field('code')} />
      <div className="form-actions">
        <LoaderButton type="button" onClick={renew} loading={renewing} disabled={busy}>
          New recovery codes
        </LoaderButton>
        <LoaderButton type="submit" className="btn-danger" loading={busy} disabled={renewing}>
          Turn off two-factor authentication
        </LoaderButton>
      </div>
    </form>
  );
}

export function TwoFactorPage() {
  const { user } = useSession();
  const [codes, setCodes] = useState(null); // shown once, even though MFA is now on
  let body;
  if (codes) body = <RecoveryCodes codes={codes} onDone={() => setCodes(null)} />;
  else body = user.mfa_enabled ? <Manage setCodes={setCodes} /> : <Enrol setCodes={setCodes} />;
  return (
    <Panel title="Two-factor authentication" description="A second proof at login: a code from an app on your phone.">
      {body}
    </Panel>
  );
}

export function DeleteAccountPage() {
  const { user, endSession } = useSession();
  const confirm = useConfirm();
  const form = useForm({ current_password: '', code: '' }, {
    current_password: (v) => (v ? null : 'Enter your current password.'),
    ...(user.mfa_enabled ? { code: (v) => (v.trim() ? null : 'Enter a code from your app, or a recovery code.') } : {}),
  });
  const [submit, busy] = useSubmit(async () => {
    if (!form.validate()) return;
    const yes = await confirm({
      title: 'Delete your account for good?',
      body: 'Your projects and their chats are deleted; your messages in other rooms stay, signed “Deleted user”. This cannot be undone.',
      confirmLabel: 'Delete my account',
      danger: true,
    });
    if (!yes) return;
    const c = form.values.code.replace(/\s+/g, '');
    const second = !user.mfa_enabled ? {} : /^\d{6}$/.test(c) ? { code: c } : { recovery_code: form.values.code.trim() };
    try {
      await accounts.deleteMe({ current_password: form.values.current_password, ...second });
      endSession('deleted');
    } catch (err) {
      if (err.field === 'recovery_code') form.setError('code', humanError(err));
      else form.fail(err);
    }
  });
  return (
    <Panel title="Delete account" description="Deletes your account and your projects. Your chat messages elsewhere stay, without your name.">
      <form className="form" onSubmit={submit} noValidate>
        <FormError>{form.formError}</FormError>
        <Field label="Current password" type="password" autoComplete="current-password" {...form.field('current_password')} />
        {user.mfa_enabled && <Field label="Code from your app, or a recovery code" autoComplete="one-time-code" {...form.field('code')} />}
        <div className="form-actions">
          <LoaderButton type="submit" className="btn-danger" loading={busy}>
            Delete my account
          </LoaderButton>
        </div>
      </form>
    </Panel>
  );
}
