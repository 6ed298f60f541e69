// Auth.jsx: the pages before a session: log in (and its second step when
// two-factor authentication is on), sign up, forgot and reset the password,
// and confirm an email address from a mailed link. Log in and sign up go back
// to where the user was going (?next=); the login page says why the user is
// there (?reason=: the session ended, the account was disabled, ...).
import { useEffect, useRef, useState } from 'react';
import { Link, useLocation, useNavigate } from 'react-router';
import { CircleCheck, MailCheck } from 'lucide-react';
import { accounts } from '../../api.js';
import Field, { FormError, useForm } from '../../components/Field.jsx';
import LoaderButton, { useSubmit } from '../../components/LoaderButton.jsx';
import { Loading, Notice } from '../../components/UI.jsx';
import { humanError } from '../../lib/errors.js';
import { useTitle } from '../../lib/store.js';
import { nextPath, useSession } from '../../session.jsx';
import { PASSWORD_HINT, codeProblem, emailProblem, lengthProblem, passwordProblem } from '../../validate.js';

const REASONS = {
  disabled: ['error', 'Your account has been disabled. Contact an administrator if you think this is a mistake.'],
  revoked: ['warn', 'For your safety your session was ended. Please log in again.'],
  ended: ['info', 'Your session has ended: you logged out on another device, it was ended from your settings or by an administrator, or it expired. Please log in again.'],
  elsewhere: ['info', 'You logged out in another tab.'],
  logout: ['ok', 'You have logged out.'],
  deleted: ['ok', 'Your account has been deleted. Thank you for using Pilotlight.'],
  reset: ['ok', 'Your password has been changed. Log in with the new one.'],
  everywhere: ['ok', 'You have logged out everywhere.'],
};

function AuthCard({ title, subtitle, children, footer }) {
  return (
    <section className="page page-narrow auth-page">
      <h1>{title}</h1>
      {subtitle && <p className="muted">{subtitle}</p>}
      <div className="card">{children}</div>
      {footer && <p className="after-form">{footer}</p>}
    </section>
  );
}

function MfaStep({ ticket, onDone, onCancel }) {
  const { loginMfa } = useSession();
  const [recovery, setRecovery] = useState(false);
  const form = useForm(
    { code: '', recovery_code: '' },
    recovery
      ? { recovery_code: (v) => (v.trim() ? null : 'Enter one of your recovery codes.') }
      : { code: codeProblem },
  );
  const [submit, busy] = useSubmit(async () => {
    if (!form.validate()) return;
    try {
      await loginMfa(
        ticket,
        recovery ? { recovery_code: form.values.recovery_code.trim() } : { code: form.values.code.replace(/\s+/g, '') },
      );
      onDone();
    } catch (err) {
      if (err.field === 'mfa_ticket') {
        onCancel('That sign-in step has expired. Log in again.');
        return;
      }
      form.fail(err);
    }
  });
  return (
    <AuthCard title="Two-factor authentication" subtitle="One more step: prove it is you.">
      <form className="form" onSubmit={submit} noValidate>
        <FormError>{form.formError}</FormError>
        {recovery ? (
          <Field
            label="Recovery code"
            autoComplete="off"
            autoFocus
            hint="One of the codes you saved when you turned two-factor authentication on. Each works once."
            {...form.field('recovery_code')}
          />
        ) : (
          <Field
            label="Code from your app"
            inputMode="numeric"
            autoComplete="one-time-code"
            autoFocus
            maxLength={12}
            hint="The 6 digits your authenticator app shows for Pilotlight."
            {...form.field('code')}
          />
        )}
        <LoaderButton type="submit" className="btn-primary btn-block" loading={busy}>
          Verify and log in
        </LoaderButton>
        <button type="button" className="btn btn-link" onClick={() => setRecovery((r) => !r)}>
          {recovery ? 'Use a code from the app instead' : 'Use a recovery code instead'}
        </button>
        <button type="button" className="btn btn-link" onClick={() => onCancel(null)}>
          Back to log in
        </button>
      </form>
    </AuthCard>
  );
}

export function LoginPage() {
  useTitle('Log in');
  const { login } = useSession();
  const navigate = useNavigate();
  const { search } = useLocation();
  const params = new URLSearchParams(search);
  const reason = REASONS[params.get('reason')];
  const [ticket, setTicket] = useState(null);
  const [stepError, setStepError] = useState(null);
  const form = useForm(
    { email: params.get('email') || '', password: '' },
    {
      email: (v) => (v.trim() ? null : 'Enter your email address.'),
      password: (v) => (v ? null : 'Enter your password.'),
    },
  );
  const [submit, busy] = useSubmit(async () => {
    if (!form.validate()) return;
    setStepError(null);
    try {
      const data = await login(form.values.email.trim(), form.values.password);
      if (data.mfa_required) setTicket(data.mfa_ticket);
      else navigate(nextPath(search), { replace: true });
    } catch (err) {
      form.fail(err);
    }
  });
  if (ticket)
    return (
      <MfaStep
        ticket={ticket}
        onDone={() => navigate(nextPath(search), { replace: true })}
        onCancel={(msg) => {
          setTicket(null);
          setStepError(msg);
        }}
      />
    );
  const keep = new URLSearchParams(search);
  keep.delete('reason');
  keep.delete('email');
  const carry = keep.toString() ? `?${keep}` : '';
  return (
    <AuthCard
      title="Log in"
      subtitle="Welcome back to Pilotlight."
      footer={
        <>
          No account yet? <Link to={`/signup${carry}`}>Sign up</Link>
        </>
      }
    >
      {reason && !form.formError && (
        <Notice tone={reason[0]} role="status">
          {reason[1]}
        </Notice>
      )}
      {stepError && <Notice tone="warn">{stepError}</Notice>}
      <form className="form" onSubmit={submit} noValidate>
        <FormError>{form.formError}</FormError>
        <Field label="Email" type="email" autoComplete="email" {...form.field('email')} />
        <Field label="Password" type="password" autoComplete="current-password" {...form.field('password')} />
        <div className="form-row-end">
          <Link to={`/forgot-password${form.values.email ? `?email=${encodeURIComponent(form.values.email.trim())}` : ''}`}>
            Forgot password?
          </Link>
        </div>
        <LoaderButton type="submit" className="btn-primary btn-block" loading={busy}>
          Log in
        </LoaderButton>
      </form>
    </AuthCard>
  );
}

export function SignupPage() {
  useTitle('Sign up');
  const { login } = useSession();
  const navigate = useNavigate();
  const { search } = useLocation();
  const form = useForm(
    { display_name: '', email: '', password: '' },
    {
      display_name: (v) => lengthProblem(v.trim(), { min: 1, max: 100, label: 'Your name' }),
      email: (v) => emailProblem(v.trim()),
      password: (v, all) => passwordProblem(v, all.email.trim()),
    },
  );
  const [taken, setTaken] = useState(null);
  const [submit, busy] = useSubmit(async () => {
    if (!form.validate()) return;
    setTaken(null);
    const { display_name, password } = form.values;
    const email = form.values.email.trim();
    try {
      await accounts.signup(email, password, display_name.trim());
      const data = await login(email, password);
      navigate(data.mfa_required ? '/login' : nextPath(search), { replace: true });
    } catch (err) {
      if (err.code === 'email_taken') setTaken(email);
      form.fail(err);
    }
  });
  const keep = search;
  return (
    <AuthCard
      title="Create your account"
      subtitle="Plan projects and talk them through with your team."
      footer={
        <>
          Have an account? <Link to={`/login${keep}`}>Log in</Link>
        </>
      }
    >
      <form className="form" onSubmit={submit} noValidate>
        <FormError>{form.formError}</FormError>
        <Field label="Your name" autoComplete="name" maxLength={100} {...form.field('display_name')} />
        <Field label="Email" type="email" autoComplete="email" {...form.field('email')} />
        {taken && (
          <Notice tone="info">
            <Link to={`/login?email=${encodeURIComponent(taken)}${keep ? `&${keep.slice(1)}` : ''}`}>Log in as {taken}</Link>
            {' or '}
            <Link to={`/forgot-password?email=${encodeURIComponent(taken)}`}>reset its password</Link>.
          </Notice>
        )}
        <Field label="Password" type="password" autoComplete="new-password" hint={PASSWORD_HINT} {...form.field('password')} />
        <LoaderButton type="submit" className="btn-primary btn-block" loading={busy}>
          Create account
        </LoaderButton>
      </form>
    </AuthCard>
  );
}

export function ForgotPasswordPage() {
  useTitle('Forgot password');
  const { search } = useLocation();
  const [sentTo, setSentTo] = useState(null);
  const form = useForm({ email: new URLSearchParams(search).get('email') || '' }, { email: (v) => emailProblem(v.trim()) });
  const [submit, busy] = useSubmit(async () => {
    if (!form.validate()) return;
    try {
      await accounts.forgotPassword(form.values.email.trim());
      setSentTo(form.values.email.trim());
    } catch (err) {
      form.fail(err);
    }
  });
  if (sentTo)
    return (
      <AuthCard title="Check your email" footer={<Link to="/login">Back to log in</Link>}>
        <div className="done">
          <MailCheck aria-hidden="true" size={32} className="done-icon" />
          <p role="status">
            If an account uses <strong>{sentTo}</strong>, we have sent it a link to choose a new password. The link works
            for 30 minutes.
          </p>
          <p className="muted small">Nothing came? Check the spam folder, or wait a minute and ask again.</p>
        </div>
      </AuthCard>
    );
  return (
    <AuthCard
      title="Forgot your password?"
      subtitle="Enter your email address and we will send you a link to choose a new one."
      footer={<Link to="/login">Back to log in</Link>}
    >
      <form className="form" onSubmit={submit} noValidate>
        <FormError>{form.formError}</FormError>
        <Field label="Email" type="email" autoComplete="email" {...form.field('email')} />
        <LoaderButton type="submit" className="btn-primary btn-block" loading={busy}>
          Send the link
        </LoaderButton>
      </form>
    </AuthCard>
  );
}

/** The token of a mailed link, read once; the URL loses it at once (history.replaceState). */
function useLinkToken(path) {
  const navigate = useNavigate();
  const [token] = useState(() => new URLSearchParams(window.location.search).get('token') || '');
  useEffect(() => {
    if (new URLSearchParams(window.location.search).has('token')) navigate(path, { replace: true });
  }, [navigate, path]);
  return token;
}

export function ResetPasswordPage() {
  useTitle('Choose a new password');
  const token = useLinkToken('/reset-password');
  const { user, endSession } = useSession();
  const navigate = useNavigate();
  const [linkError, setLinkError] = useState(token ? null : 'token_unknown');
  const form = useForm({ password: '', confirm: '' }, {
    password: (v) => passwordProblem(v, user ? user.email : ''),
    confirm: (v, all) => (v === all.password ? null : 'The two passwords are not the same.'),
  });
  const [submit, busy] = useSubmit(async () => {
    if (!form.validate()) return;
    try {
      await accounts.resetPassword(token, form.values.password);
      if (user) endSession('reset');
      else navigate('/login?reason=reset', { replace: true });
    } catch (err) {
      if (err.field === 'token') setLinkError(err.code);
      else form.fail(err);
    }
  });
  if (linkError)
    return (
      <AuthCard title="This link does not work" footer={<Link to="/login">Back to log in</Link>}>
        <Notice tone="error">{humanError({ code: linkError })}</Notice>
        <p>
          <Link to="/forgot-password" className="btn btn-primary">
            Send me a new link
          </Link>
        </p>
      </AuthCard>
    );
  return (
    <AuthCard title="Choose a new password" subtitle="Every device you are logged in on will be logged out.">
      <form className="form" onSubmit={submit} noValidate>
        <FormError>{form.formError}</FormError>
        <Field label="New password" type="password" autoComplete="new-password" autoFocus hint={PASSWORD_HINT} {...form.field('password')} />
        <Field label="Repeat the new password" type="password" autoComplete="new-password" {...form.field('confirm')} />
        <LoaderButton type="submit" className="btn-primary btn-block" loading={busy}>
          Set the new password
        </LoaderButton>
      </form>
    </AuthCard>
  );
}

export function VerifyEmailPage() {
  useTitle('Confirm your email');
  const token = useLinkToken('/verify-email');
  const { user, setUser } = useSession();
  const [state, setState] = useState(token ? 'working' : 'error');
  const [error, setError] = useState(token ? null : { code: 'token_unknown' });
  const [email, setEmail] = useState(null);
  const once = useRef(false);
  useEffect(() => {
    if (!token || once.current) return;
    once.current = true;
    accounts
      .verifyEmail(token)
      .then((data) => {
        setEmail(data.user.email);
        setState('done');
        if (user && user.id === data.user.id) setUser(data.user);
      })
      .catch((err) => {
        setError(err);
        setState('error');
      });
  }, [token]); // eslint-disable-line react-hooks/exhaustive-deps
  if (state === 'working') return <Loading>Confirming your email address…</Loading>;
  if (state === 'done')
    return (
      <AuthCard title="Email address confirmed">
        <div className="done">
          <CircleCheck aria-hidden="true" size={32} className="done-icon done-ok" />
          <p role="status">
            <strong>{email}</strong> is confirmed. Thank you.
          </p>
          <Link to={user ? '/projects' : `/login?email=${encodeURIComponent(email)}`} className="btn btn-primary">
            {user ? 'Go to your projects' : 'Log in'}
          </Link>
        </div>
      </AuthCard>
    );
  return (
    <AuthCard title="This link does not work" footer={<Link to={user ? '/projects' : '/login'}>{user ? 'Go to your projects' : 'Back to log in'}</Link>}>
      <Notice tone="error">{humanError(error)}</Notice>
      {user && user.email_verified === false && (
        <p className="muted">Use “Resend the link” at the top of the page for a new one.</p>
      )}
    </AuthCard>
  );
}
