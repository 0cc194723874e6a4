// Locks in: the seed incident (decode loop regressed by a blocking D2H cudaMemcpy per step) is explained against its baseline: slowdown quantified, the copy named as the main cause with its share of the delta, distribution shift tested, TTFT > 10x.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openReadOnly } from '../../src/store/db.js';
import { compareSessions } from '../../src/analyze/compare.js';
import { runExplain } from '../../src/cli/explain.js';
import * as S from './scenarios.js';

test('seed incident: blocking cudaMemcpy per decode step vs async baseline', () => {
  const base = S.decode('baseline');
  const reg = S.decode('regressed');
  const bdb = openReadOnly(base.file);
  const cdb = openReadOnly(reg.file);
  const cmp = compareSessions(bdb, base.sessionId, cdb, reg.sessionId);
  bdb.close();
  cdb.close();
  // baseline ~1 ms per token, regressed ~14 ms per token
  assert.ok(cmp.slowdown > 10 && cmp.slowdown < 18, `slowdown ${cmp.slowdown}`);
  assert.ok(cmp.ttft_ratio !== null && cmp.ttft_ratio > 10, `ttft ratio ${cmp.ttft_ratio}`);
  assert.ok(cmp.new_ops.includes('cudaMemcpy(DeviceToHost)'));
  assert.ok(cmp.vanished_ops.includes('cudaEventSynchronize'));
  const top = cmp.chains[0];
  assert.equal(top.kind, 'regression');
  assert.equal(top.op, 'cudaMemcpy');
  assert.match(top.summary, /x the baseline/);
  assert.match(top.summary, /cudaMemcpy \(DeviceToHost\)/);
  // 100 tokens x (12 ms copy + ~1 ms GPU wait + 1 ms host work it serialized) = ~1.4 s of the ~1.3 s delta; the vanished event sync gives back ~0.1 s
  const share = cmp.causes.find((c) => c.cause === 'cudaMemcpy(DeviceToHost)')!.share_of_delta;
  assert.ok(share > 0.85 && share < 1.1, `share ${share}`);
  // the 1 ms of host logprob work after each copy runs with the GPU idle: it belongs to the copy's cause
  // (one chain: "the new blocking copy and the host work it serialized"), not to a separate host_cpu cause
  const host = cmp.causes.find((c) => c.cause === 'host_cpu')!;
  assert.ok(Math.abs(host.delta_ns) < 10 * S.MS, `host delta ${host.delta_ns}`);
  assert.match(top.summary, /serializes the host work after it \(9\d(\.\d)? ms/);
  // shares of the time added sum to 100%, and what was given back closes the gap to the net delta
  const added = cmp.causes.filter((c) => c.delta_ns > 0).reduce((x, c) => x + c.share_of_delta, 0);
  assert.ok(Math.abs(added - 1) < 0.01, `shares of added time sum to ${added}`);
  assert.ok(Math.abs(cmp.added_ns + cmp.given_back_ns - cmp.wall_delta_ns) <= 1);
  assert.ok(Math.abs(cmp.wall_delta_ns - (cmp.current.wall_ns - cmp.baseline.wall_ns)) === 0);
  assert.match(top.summary, new RegExp(`${Math.round(100 * share)}% of the difference`));
  // distribution: the launch op is unchanged (same kernels), not reported slower
  const launch = cmp.ops.find((o) => o.op === 'cudaLaunchKernel')!;
  assert.equal(launch.status, 'unchanged');
  assert.ok(launch.p_value !== null && launch.p_value > 0.01);
});

test('mann-whitney flags a shifted distribution and the CLI adds comparison + regression chains', () => {
  const base = S.blockingSync(S.tmpDb('b1'));
  const cur = S.blockingSync(S.tmpDb('b2'));
  const same = compareSessions(openReadOnly(base.file), base.sessionId, openReadOnly(cur.file), cur.sessionId);
  assert.equal(same.chains.length, 0, 'identical runs: no regression');
  assert.ok(same.ops.every((o) => o.status === 'unchanged'));
  const base2 = S.decode('baseline', S.tmpDb('d1'));
  const reg2 = S.decode('regressed', S.tmpDb('d2'));
  const out = runExplain({ db: reg2.file, baseline: base2.file, json: true, persist: false });
  assert.ok(out.comparison);
  assert.equal(out.chains[0].kind, 'regression', 'the answer to "why slower" is the top chain');
  assert.ok(out.chains.some((c) => c.kind === 'blocking_sync' && c.op === 'cudaMemcpy'));
});

test('explain --baseline stores regression chains with their baseline identity; the session analysed without a baseline shows its own chains', async () => {
  const { loadChains } = await import('../../src/serve/tools/chains-source.js');
  const base = S.decode('baseline', S.tmpDb('p1'));
  const reg = S.decode('regressed', S.tmpDb('p2'));
  const out = runExplain({ db: reg.file, baseline: base.file, json: true, persist: true });
  const r = out.chains.filter((c) => c.kind === 'regression');
  assert.ok(r.length > 0, 'regression chains with --baseline');
  for (const c of r) {
    assert.equal(c.baseline?.file, base.file);
    assert.equal(c.baseline?.session_id, base.sessionId);
    assert.match(c.baseline?.fingerprint ?? '', /^[0-9a-f]{16}$/);
  }
  // top chain: the copy, its shares of the added time and what was given back add up to the delta
  assert.equal(out.chains[0].kind, 'regression');
  assert.equal(out.chains[0].op, 'cudaMemcpy');
  const cmp = out.comparison!;
  assert.equal(cmp.baseline_ref.fingerprint, r[0].baseline!.fingerprint);
  const sum = cmp.causes.reduce((x, c) => x + c.delta_ns, 0);
  assert.ok(Math.abs(sum - cmp.wall_delta_ns) <= 0.01 * cmp.wall_delta_ns, `components ${sum} vs delta ${cmp.wall_delta_ns}`);
  // without a baseline: the stored chains served by default, and a fresh analysis, are the session's own
  const db = openReadOnly(reg.file);
  try {
    const served = await loadChains(db, reg.sessionId, { dbPath: reg.file });
    assert.equal(served.source, 'stored');
    assert.ok(served.chains.length > 0);
    assert.ok(served.chains.every((c) => c.kind !== 'regression'), `served: ${served.chains.map((c) => c.kind).join(', ')}`);
    assert.equal(served.chains[0].kind, 'blocking_sync');
    assert.equal(served.chains[0].op, 'cudaMemcpy');
    const runs = db.prepare('SELECT baseline FROM analysis_runs WHERE session_id = ? ORDER BY id').pluck().all(reg.sessionId) as (string | null)[];
    assert.equal(runs.length, 2, 'a comparison run naming its baseline, then the session\'s own run');
    assert.equal(JSON.parse(runs[0]!).file, base.file);
    assert.equal(runs[1], null);
  } finally {
    db.close();
  }
  const own = runExplain({ db: reg.file, json: true, persist: false });
  assert.ok(own.chains.every((c) => c.kind !== 'regression'));
});
