/** `npm run schema`: writes schema/gateway.schema.json, the JSON Schema editors use for gateway.yaml. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { jsonSchemaText } from '../src/config/jsonschema.ts';
import { PROJECT_ROOT } from '../src/io/static.ts';

const path = join(PROJECT_ROOT, 'schema/gateway.schema.json');
writeFileSync(path, jsonSchemaText());
process.stdout.write(`wrote ${path}\n`);
