import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { OPENAPI_FILE, renderOpenApiYaml } from '../../src/openapi/write-openapi.js';

describe('openapi.yaml', () => {
  it('is what the code generates (run `npm run openapi` after changing controllers or DTOs)', async () => {
    assert.equal(readFileSync(OPENAPI_FILE, 'utf8'), await renderOpenApiYaml());
  });
});
