// Locks in one credential file per running server: a second local-mode server on the same database never overwrites nor removes the first one's <db>.mcp-token; each server removes only its own file, and a stale file (its token revoked or expired) is taken over.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { openWritable } from '../../src/store/db.js';
import { createHttpAuth, LocalTokenStore } from '../../src/serve/auth/index.js';
import { tempDir } from '../helpers/temp-dir.js';

const dir = tempDir('cw-tokfile-');
const db = path.join(dir, 'tf.db');
openWritable(db).close();
after(() => fs.rmSync(dir, { recursive: true, force: true }));

test("a second server on the same database keeps the first one's token file", async () => {
  const first = await createHttpAuth({ dbPath: db, resourceUrl: 'http://127.0.0.1:18795/mcp' });
  const firstFile = first.tokenFile!;
  assert.equal(firstFile, `${db}.mcp-token`);
  const firstToken = fs.readFileSync(firstFile, 'utf8').trim();
  const second = await createHttpAuth({ dbPath: db, resourceUrl: 'http://127.0.0.1:18796/mcp' });
  assert.notEqual(second.tokenFile, firstFile, 'the second server writes its own file');
  assert.equal(fs.statSync(second.tokenFile!).mode & 0o777, 0o600);
  const secondToken = fs.readFileSync(second.tokenFile!, 'utf8').trim();
  assert.notEqual(secondToken, firstToken);
  assert.equal(fs.readFileSync(firstFile, 'utf8').trim(), firstToken, 'not overwritten');
  await second.close();
  assert.ok(!fs.existsSync(second.tokenFile!), 'the second removes its own file');
  assert.equal(fs.readFileSync(firstFile, 'utf8').trim(), firstToken, 'and leaves the first one');
  assert.equal(typeof new LocalTokenStore(db).verify(firstToken), 'object', 'the first token still works');
  await first.close();
  assert.ok(!fs.existsSync(firstFile));
});

test('a stale token file (its token revoked, its server gone) is taken over', async () => {
  const store = new LocalTokenStore(db);
  const stale = store.mint({ ttlS: 60, origin: 'server' });
  fs.writeFileSync(`${db}.mcp-token`, stale.token + '\n', { mode: 0o600 });
  store.revoke(stale.entry.id);
  const auth = await createHttpAuth({ dbPath: db, resourceUrl: 'http://127.0.0.1:18797/mcp' });
  try {
    assert.equal(auth.tokenFile, `${db}.mcp-token`);
    assert.notEqual(fs.readFileSync(auth.tokenFile!, 'utf8').trim(), stale.token);
  } finally {
    await auth.close();
  }
});
