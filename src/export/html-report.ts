import type { Db } from '../store/db.js';
export async function writeHtmlReport(_db: Db, _sid: number | undefined, _out: string): Promise<{ bytes: number; session_id: number; chains: number; ops: number }> {
  throw new Error('not yet');
}
