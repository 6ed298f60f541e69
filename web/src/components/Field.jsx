// Form fields with inline validation: a field checks its rule when it loses
// focus and on submit (useForm), and shows either its own message or the
// server's error for that field (ApiError.field), next to the input.
import { useId, useState } from 'react';

/**
 * useForm(initial, rules): values, per-field errors, and helpers.
 * rules: {name: (value, values) => message | null}.
 */
export function useForm(initial, rules = {}) {
  const [values, setValues] = useState(initial);
  const [errors, setErrors] = useState({});
  const [formError, setFormError] = useState(null);

  const check = (name, v = values) => (rules[name] ? rules[name](v[name], v) : null);

  return {
    values,
    errors,
    formError,
    setValues,
    setFormError,
    set(name, value) {
      setValues((v) => ({ ...v, [name]: value }));
      if (errors[name]) setErrors((e) => ({ ...e, [name]: null }));
    },
    blur(name) {
      setErrors((e) => ({ ...e, [name]: check(name) }));
    },
    /** Checks every rule; true when all pass. */
    validate() {
      const next = {};
      for (const name of Object.keys(rules)) if (name in values) next[name] = check(name);
      setErrors(next);
      setFormError(null);
      return Object.values(next).every((m) => !m);
    },
    /** Shows an API error next to its field, or above the form. */
    fail(err) {
      if (err && err.field && Object.prototype.hasOwnProperty.call(values, err.field)) {
        setErrors((e) => ({ ...e, [err.field]: err.message }));
        setFormError(null);
      } else {
        setFormError(err ? err.message : 'Something went wrong.');
      }
    },
    /** Props for a Field bound to `name`. */
    field(name) {
      return {
        name,
        value: values[name],
        error: errors[name],
        onChange: (value) => this.set(name, value),
        onBlur: () => this.blur(name),
      };
    },
  };
}

/** A labelled input, textarea or select with its error below. */
export default function Field({ label, name, value, error, onChange, onBlur, as = 'input', options, hint, className = '', ...rest }) {
  const id = useId();
  const errId = `${id}-error`;
  const hintId = `${id}-hint`;
  const describedBy = [error ? errId : null, hint ? hintId : null].filter(Boolean).join(' ') || undefined;
  const common = {
    id,
    name,
    value,
    onChange: (e) => onChange(e.target.value),
    onBlur,
    'aria-invalid': error ? true : undefined,
    'aria-describedby': describedBy,
    className: error ? 'has-error' : undefined,
    ...rest,
  };
  let control;
  if (as === 'textarea') control = <textarea {...common} />;
  else if (as === 'select')
    control = (
      <select {...common}>
        {options.map(([v, text]) => (
          <option key={v} value={v}>
            {text}
          </option>
        ))}
      </select>
    );
  else control = <input {...common} />;
  return (
    <div className={`field ${className}`}>
      <label htmlFor={id}>{label}</label>
      {control}
      {hint && !error && (
        <p className="field-hint" id={hintId}>
          {hint}
        </p>
      )}
      {error && (
        <p className="field-error" id={errId} role="alert">
          {error}
        </p>
      )}
    </div>
  );
}

/** An error for the whole form (not tied to one field). */
export function FormError({ children }) {
  if (!children) return null;
  return (
    <p className="form-error" role="alert">
      {children}
    </p>
  );
}

export function useToggle(initial = false) {
  const [on, setOn] = useState(initial);
  return [on, () => setOn(true), () => setOn(false)];
}
