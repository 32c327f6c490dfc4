import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { createApp } from '../bootstrap.js';
import { loadConfig } from '../config/config.js';
import { buildOpenApiDocument } from './openapi.js';

export const OPENAPI_FILE = fileURLToPath(new URL('../../../openapi.yaml', import.meta.url));

/** The committed openapi.yaml, as the current code would write it. */
export async function renderOpenApiYaml(): Promise<string> {
  // Placeholder endpoints: building the document connects to nothing.
  const config = loadConfig({
    REDIS_URL: 'redis://127.0.0.1:1/0',
    STEVEDORE_TOKEN: 'openapi-generation-only',
    STEVEDORE_LOG_LEVEL: 'error',
    PATH: '',
  });
  const app = await createApp(config, { api: true, worker: false });
  try {
    // No init(): the document needs the routes, not the connections init would open.
    return stringify(buildOpenApiDocument(app), { aliasDuplicateObjects: false, lineWidth: 0 });
  } finally {
    await app.close();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const yaml = await renderOpenApiYaml();
  if (process.argv.includes('--check')) {
    if (readFileSync(OPENAPI_FILE, 'utf8') !== yaml) {
      console.error('openapi.yaml is stale: run `npm run openapi` and commit it');
      process.exit(1);
    }
  } else {
    writeFileSync(OPENAPI_FILE, yaml);
    console.log(`wrote ${OPENAPI_FILE}`);
  }
}
