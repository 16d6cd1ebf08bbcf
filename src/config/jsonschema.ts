/**
 * The JSON Schema for editors (yaml-language-server), emitted from the same zod schema that validates, so the
 * two cannot drift; a test checks the committed copy is current. Cross-field rules (rules.ts) cannot be said
 * in JSON Schema; the build still enforces them.
 */
import { z } from 'zod';
import { GatewayConfigSchema } from './schema.ts';

export function jsonSchemaText(): string {
  const schema = z.toJSONSchema(GatewayConfigSchema, { io: 'input', unrepresentable: 'throw' });
  const withId = { ...schema, $id: 'https://qubes-i2p-gateway.org/schema/gateway.schema.json', title: 'qubes-i2p-gateway config' };
  return `${JSON.stringify(withId, null, 2)}\n`;
}
