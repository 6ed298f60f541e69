// Form fields with inline validation: a field checks its rule when it loses
// focus after the user changed it (never on a field not yet touched), and
// every field on submit (useForm); it shows either its own message or the
// server's error for that field (ApiError.field), in human words, next to
// the input.
import { useCallback, useId, useRef, useState } from 'react';
import { CircleAlert } from 'lucide-react';
import { humanError } from '../lib/errors.js';

/**
 * useForm(initial, rules): values, per-field errors, and helpers.
 * rules: {name: (value, values) => message | null}.
 */
export function useForm(initial, rules = {}) {
  const [values, setValuesState] = useState(initial);
  const [errors, setErrors] = useState({});
  const [formError, setFormError] = useState(null);
  const touched = useRef({});
  const submitted = useRef(false);
  const valuesRef = useRef(values);
  valuesRef.current = values;

  const check = (name, v = valuesRef.current) => (rules[name] ? rules[name](v[name], v) : null);
  const setValues = useCallback((v) => {
    touched.current = {};
    submitted.current = false;
    setErrors({});
    setFormError(null);
    setValuesState(v);
  }, []);

  const form = {
    values,
    errors,
    formError,
    setValues,
    setFormError,
    setError: (name, message) => setErrors((e) => ({ ...e, [name]: message })),
    set(name, value) {
      touched.current[name] = true;
      setValuesState((v) => ({ ...v, [name]: value }));
      if (errors[name]) setErrors((e) => ({ ...e, [name]: null }));
    },
    blur(name) {
      if (!touched.current[name] && !submitted.current) return;
      setErrors((e) => ({ ...e, [name]: check(name) }));
    },
    /** Checks every rule; true when all pass. */
    validate() {
      submitted.current = true;
      const next = {};
      for (const name of Object.keys(rules)) if (name in valuesRef.current) next[name] = check(name);
      setErrors(next);
      setFormError(null);
      return Object.values(next).every((m) => !m);
    },
    /** Shows an API error next to its field, or above the form. */
    fail(err, fieldWords) {
      const words = (fieldWords && fieldWords(err)) || humanError(err);
      if (err && err.field && Object.prototype.hasOwnProperty.call(valuesRef.current, err.field)) {
        setErrors((e) => ({ ...e, [err.field]: words }));
        setFormError(null);
      } else {
        setFormError(words);
      }
    },
    /** Props for a Field bound to `name`. */
    field(name) {
      return {
        name,
        value: values[name],
        error: errors[name],
        onChange: (value) => form.set(name, value),
        onBlur: () => form.blur(name),
      };
    },
  };
  return form;
}

/** A labelled input, textarea or select with its hint or error below. */
export default function Field({ label, name, value, error, onChange, onBlur, as = 'input', options, hint, className = '', ...rest }) {
  const id = useId();
  const errId = `${id}-error`;
  const hintId = `${id}-hint`;
  const describedBy = [error ? errId : null, hint && !error ? hintId : null].filter(Boolean).join(' ') || undefined;
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
          <CircleAlert aria-hidden="true" size={14} />
          <span>{error}</span>
        </p>
      )}
    </div>
  );
}

/** An error for the whole form (not tied to one field): an ApiError or words. */
export function FormError({ children }) {
  if (!children) return null;
  const words = typeof children === 'object' && children.status !== undefined ? humanError(children) : children;
  return (
    <div className="notice notice-error" role="alert">
      <CircleAlert aria-hidden="true" size={18} />
      <div>{words}</div>
    </div>
  );
}
