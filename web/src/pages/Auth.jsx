// Auth.jsx: log in and sign up. Both go back to where the user was going
// (?next=), or to the projects.
import { accounts } from '../api.js';
import Field, { FormError, useForm } from '../components/Field.jsx';
import LoaderButton, { useSubmit } from '../components/LoaderButton.jsx';
import { Link, navigate } from '../router.jsx';
import { useSession } from '../session.jsx';
import { emailProblem, lengthProblem, passwordProblem } from '../validate.js';

function nextPath() {
  const next = new URLSearchParams(window.location.search).get('next');
  // only a path of this site, never another origin
  return next && next.startsWith('/') && !next.startsWith('//') ? next : '/projects';
}

export function LoginPage() {
  const { login } = useSession();
  const form = useForm(
    { email: '', password: '' },
    {
      email: (v) => (v ? null : 'Enter your email address.'),
      password: (v) => (v ? null : 'Enter your password.'),
    },
  );
  const [submit, busy] = useSubmit(async () => {
    if (!form.validate()) return;
    try {
      await login(form.values.email.trim(), form.values.password);
      navigate(nextPath(), { replace: true });
    } catch (err) {
      form.fail(err);
    }
  });
  const search = window.location.search;
  return (
    <section className="page page-narrow">
      <h1>Log in</h1>
      <form className="card form" onSubmit={submit} noValidate>
        <FormError>{form.formError}</FormError>
        <Field label="Email" type="email" autoComplete="email" {...form.field('email')} />
        <Field label="Password" type="password" autoComplete="current-password" {...form.field('password')} />
        <LoaderButton type="submit" className="btn-primary" loading={busy}>
          Log in
        </LoaderButton>
      </form>
      <p className="after-form">
        No account yet? <Link to={`/signup${search}`}>Sign up</Link>
      </p>
    </section>
  );
}

export function SignupPage() {
  const { login } = useSession();
  const form = useForm(
    { display_name: '', email: '', password: '' },
    {
      display_name: (v) => lengthProblem(v, { min: 1, max: 100, label: 'Your name' }),
      email: (v) => emailProblem(v.trim()),
      password: (v, all) => passwordProblem(v, all.email.trim()),
    },
  );
  const [submit, busy] = useSubmit(async () => {
    if (!form.validate()) return;
    const { display_name, password } = form.values;
    const email = form.values.email.trim();
    try {
      await accounts.signup(email, password, display_name);
      await login(email, password);
      navigate(nextPath(), { replace: true });
    } catch (err) {
      form.fail(err);
    }
  });
  const search = window.location.search;
  return (
    <section className="page page-narrow">
      <h1>Sign up</h1>
      <form className="card form" onSubmit={submit} noValidate>
        <FormError>{form.formError}</FormError>
        <Field label="Your name" autoComplete="name" maxLength={100} {...form.field('display_name')} />
        <Field label="Email" type="email" autoComplete="email" {...form.field('email')} />
        <Field
          label="Password"
          type="password"
          autoComplete="new-password"
          hint="At least 10 characters; not your email address."
          {...form.field('password')}
        />
        <LoaderButton type="submit" className="btn-primary" loading={busy}>
          Create account
        </LoaderButton>
      </form>
      <p className="after-form">
        Have an account? <Link to={`/login${search}`}>Log in</Link>
      </p>
    </section>
  );
}
