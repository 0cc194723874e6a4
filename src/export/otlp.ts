import type { Db } from '../store/db.js';
export async function exportSessionOtlp(_db: Db, _sid: number | undefined, _o: { endpoint: string; headers?: Record<string, string>; timeoutMillis?: number }): Promise<{ session_id: number; metric_points: number; ops: number; cuda_calls: number; dropped: number; spans: number; endpoint: string }> {
  throw new Error('not yet');
}
