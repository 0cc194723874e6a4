// Locks in: what a client puts into the model's context for this server's tools (name, title, description and
// input schema of every tool, as JSON) stays within 6 KB; each description says when to use the tool, and every
// input field carries a short description.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { makeFixtureDb } from './fixture.js';
import { connectStdio, tmpDir } from './helpers.js';

export const TOOL_DEFS_MAX_BYTES = 6 * 1024;

test('tool definitions fit 6 KB and describe every field', async () => {
  const info = makeFixtureDb(path.join(tmpDir(), 'trace.db'));
  const client = await connectStdio(info.path);
  try {
    const { tools } = await client.listTools();
    const defs = tools.map((t) => ({ name: t.name, title: t.title, description: t.description, inputSchema: t.inputSchema }));
    const bytes = Buffer.byteLength(JSON.stringify(defs));
    console.log(`# tool definitions: ${tools.length} tools, ${bytes} bytes`);
    for (const d of defs) console.log(`#   ${d.name}: ${Buffer.byteLength(JSON.stringify(d))} bytes`);
    assert.ok(bytes <= TOOL_DEFS_MAX_BYTES, `${bytes} bytes > ${TOOL_DEFS_MAX_BYTES}`);
    for (const d of defs) {
      assert.match(d.description ?? '', /^Use /, `${d.name}: the description starts with when to use it`);
      assert.ok((d.description ?? '').length <= 260, `${d.name}: description in a sentence or two`);
      const props = (d.inputSchema as { properties?: Record<string, { description?: string }> }).properties ?? {};
      for (const [k, v] of Object.entries(props)) assert.ok(v.description && v.description.length <= 90, `${d.name}.${k}: a short description`);
    }
  } finally {
    await client.close();
  }
});
