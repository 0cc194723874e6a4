/**
 * Child process of the queries section: explainSession on one database, then
 * print {ms, chains, maxRssKb} (peak RSS of this process, which did nothing else).
 */
import { openReadOnly } from '../src/store/db.js';

const dbPath = process.argv[2];
if (!dbPath) {
  process.stderr.write('usage: explain-child DB\n');
  process.exit(1);
}
const { explainSession } = await import('../src/analyze/explain.js');
const db = openReadOnly(dbPath);
const t0 = performance.now();
const r = explainSession(db);
const ms = performance.now() - t0;
db.close();
process.stdout.write(JSON.stringify({ ms, chains: r.chains.length, maxRssKb: process.resourceUsage().maxRSS }) + '\n');
