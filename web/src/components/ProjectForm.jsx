// ProjectForm: name, description and state of a project, for creating one
// (in a dialog) and editing one (on its page).
import Field, { FormError } from './Field.jsx';
import { PROJECT_STATES } from '../validate.js';

export default function ProjectFields({ form, autoFocus = false }) {
  return (
    <>
      <FormError>{form.formError}</FormError>
      <Field label="Name" autoFocus={autoFocus} maxLength={200} {...form.field('name')} />
      <Field label="Description" as="textarea" rows={4} {...form.field('description')} />
      <Field label="State" as="select" options={PROJECT_STATES} {...form.field('state')} />
    </>
  );
}
