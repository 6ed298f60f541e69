// tests/openapi/validate.mjs: the OpenAPI document validated as OpenAPI 3.1 by
// @readme/openapi-parser (the official 3.1 JSON Schema, plus what the schema
// cannot say: unique operationIds, path parameters declared and required, no
// duplicate parameters, arrays with items). Every rule is an error; a warning
// fails too.
//   node validate.mjs URL|FILE
import { readFile } from 'node:fs/promises';
import { validate, compileErrors } from '@readme/openapi-parser';

const where = process.argv[2];
if (!where) {
  console.error('usage: node validate.mjs URL|FILE');
  process.exit(2);
}
let text;
if (/^https?:\/\//.test(where)) {
  const res = await fetch(where);
  if (res.status !== 200 || !(res.headers.get('content-type') || '').startsWith('application/json')) {
    console.error(`${where}: ${res.status} ${res.headers.get('content-type')}`);
    process.exit(1);
  }
  text = await res.text();
} else {
  text = await readFile(where, 'utf8');
}
const doc = JSON.parse(text);
if (doc.openapi !== '3.1.0') {
  console.error(`${where}: openapi is ${doc.openapi}, not 3.1.0`);
  process.exit(1);
}
const operations = Object.values(doc.paths || {}).reduce((n, item) => n + Object.keys(item).length, 0);
// validate() dereferences the object it is given: hand it a copy
const result = await validate(structuredClone(doc));
if (!result.valid || result.warnings.length > 0) {
  console.error(compileErrors(result));
  process.exit(1);
}
console.log(`${where}: a valid OpenAPI ${doc.openapi} document (${Object.keys(doc.paths).length} paths, ${operations} operations)`);
