// The API reference page (web/api-reference.html, served at /api-reference):
// Swagger UI over the document the stack serves, /api/openapi.json. Its own
// entry of the web build, sharing nothing with the app. Swagger UI runs
// under the site's Content-Security-Policy: its script and stylesheet are
// bundled here, its styles are a file (no inline <style>), and the standalone
// preset (whose logo is an SVG with an inline <style>) is left out.
import SwaggerUI from 'swagger-ui-dist/swagger-ui-es-bundle.js';
import 'swagger-ui-dist/swagger-ui.css';
import './api-reference.css';

SwaggerUI({
  url: '/api/openapi.json',
  dom_id: '#api-reference',
  deepLinking: true, // #/tag/operationId links to one operation
  docExpansion: 'list',
  defaultModelsExpandDepth: 0,
  displayOperationId: true, // the C handler's name
  filter: true,
  tryItOutEnabled: false,
  supportedSubmitMethods: ['get', 'head', 'post', 'patch', 'delete'],
  validatorUrl: null, // never ask swagger.io to validate it
  persistAuthorization: false, // no token in localStorage
});
