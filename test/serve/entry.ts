// Test entry: serves a database over stdio (argv[2]); audit records go to the JSON-lines file in CAUSEWAY_TEST_AUDIT (if set).
import fs from 'node:fs';
import { App } from '../../src/serve/context.js';
import type { Auditor } from '../../src/serve/seams.js';
import { serveCausewayStdio } from '../../src/serve/stdio.js';

const auditFile = process.env.CAUSEWAY_TEST_AUDIT;
const auditor: Auditor | undefined = auditFile
  ? {
      record: (r) => fs.appendFileSync(auditFile, JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)) + '\n'),
      close: () => {},
    }
  : undefined;
const timeoutMs = process.env.CAUSEWAY_TEST_SQL_TIMEOUT_MS ? Number(process.env.CAUSEWAY_TEST_SQL_TIMEOUT_MS) : undefined;
serveCausewayStdio(new App({ dbPath: process.argv[2], auditor, sqlCaps: timeoutMs ? { timeoutMs } : undefined }));
