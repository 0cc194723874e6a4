// A checker for Trace Event Format JSON (the "JSON Object Format" of Google's Trace Event Format spec), used by the Perfetto export tests.
import assert from 'node:assert/strict';

export interface TraceEvent {
  ph: string;
  name?: string;
  cat?: string;
  ts?: number;
  dur?: number;
  pid?: number;
  tid?: number;
  id?: number | string;
  s?: string;
  bp?: string;
  cname?: string;
  args?: Record<string, any>;
}

const EPS = 1e-6; // us: ns-exact values divided by 1000 compare within float rounding

/**
 * Checks each event against the spec's required fields per phase, b/e pairing,
 * flow chains, and that complete (X) slices nest properly per (pid, tid) track.
 * Returns the events grouped by phase.
 */
export function checkTraceEvents(doc: any): Map<string, TraceEvent[]> {
  assert.equal(typeof doc, 'object');
  assert.ok(Array.isArray(doc.traceEvents), 'traceEvents is an array');
  if (doc.displayTimeUnit !== undefined) assert.ok(['ms', 'ns'].includes(doc.displayTimeUnit), 'displayTimeUnit is ms or ns');
  const byPh = new Map<string, TraceEvent[]>();
  const known = new Set(['X', 'B', 'E', 'i', 'I', 'C', 'b', 'e', 'n', 's', 't', 'f', 'M']);
  for (const [k, ev] of (doc.traceEvents as TraceEvent[]).entries()) {
    const where = `event ${k} ${JSON.stringify(ev).slice(0, 200)}`;
    assert.equal(typeof ev.ph, 'string', where);
    assert.ok(known.has(ev.ph), `${where}: known phase`);
    assert.equal(typeof ev.pid, 'number', `${where}: pid`);
    assert.ok(Number.isInteger(ev.pid), `${where}: integer pid`);
    if (ev.ph !== 'M' || ev.tid !== undefined) assert.ok(Number.isInteger(ev.tid), `${where}: integer tid`);
    assert.equal(typeof ev.name, 'string', `${where}: name`);
    if (ev.args !== undefined) assert.equal(typeof ev.args, 'object', `${where}: args object`);
    if (ev.ph !== 'M') {
      assert.equal(typeof ev.ts, 'number', `${where}: ts number`);
      assert.ok(Number.isFinite(ev.ts) && ev.ts! >= 0, `${where}: ts >= 0`);
    }
    switch (ev.ph) {
      case 'X':
        assert.equal(typeof ev.dur, 'number', `${where}: X has a numeric dur`);
        assert.ok(Number.isFinite(ev.dur) && ev.dur! >= 0, `${where}: dur >= 0`);
        break;
      case 'i':
      case 'I':
        if (ev.s !== undefined) assert.ok(['g', 'p', 't'].includes(ev.s), `${where}: instant scope g|p|t`);
        break;
      case 'C':
        assert.ok(ev.args && Object.keys(ev.args).length > 0, `${where}: counter has args`);
        for (const v of Object.values(ev.args!)) assert.equal(typeof v, 'number', `${where}: counter values are numbers`);
        break;
      case 'b':
      case 'e':
      case 'n':
      case 's':
      case 't':
      case 'f':
        assert.ok(typeof ev.id === 'number' || typeof ev.id === 'string', `${where}: ${ev.ph} has an id`);
        assert.equal(typeof ev.cat, 'string', `${where}: ${ev.ph} has a category`);
        break;
      case 'M':
        assert.ok(['process_name', 'process_labels', 'process_sort_index', 'thread_name', 'thread_sort_index'].includes(ev.name!), `${where}: metadata name`);
        assert.ok(ev.args, `${where}: metadata args`);
        if (ev.name!.endsWith('_name')) assert.equal(typeof ev.args!.name, 'string', `${where}: name arg`);
        if (ev.name!.endsWith('_sort_index')) assert.ok(Number.isInteger(ev.args!.sort_index), `${where}: sort_index arg`);
        break;
    }
    let list = byPh.get(ev.ph);
    if (!list) byPh.set(ev.ph, (list = []));
    list.push(ev);
  }
  // async b/e pair up by (cat, id, name), end not before begin
  const open = new Map<string, TraceEvent>();
  for (const ev of [...(byPh.get('b') ?? []), ...(byPh.get('e') ?? [])].sort((a, b) => a.ts! - b.ts! || (a.ph === 'b' ? -1 : 1))) {
    const key = `${ev.cat}/${ev.id}/${ev.name}`;
    if (ev.ph === 'b') {
      assert.ok(!open.has(key), `async ${key} begins twice`);
      open.set(key, ev);
    } else {
      const b = open.get(key);
      assert.ok(b, `async end ${key} without a begin`);
      assert.ok(ev.ts! >= b!.ts!, `async ${key} ends before it begins`);
      open.delete(key);
    }
  }
  assert.equal(open.size, 0, `unterminated async slices: ${[...open.keys()].slice(0, 3)}`);
  // flows: each id has exactly one s and one f, s first
  const flows = new Map<string, TraceEvent[]>();
  for (const ph of ['s', 't', 'f']) for (const ev of byPh.get(ph) ?? []) {
    const key = `${ev.cat}/${ev.id}`;
    flows.set(key, [...(flows.get(key) ?? []), ev]);
  }
  for (const [key, evs] of flows) {
    assert.equal(evs.filter((e) => e.ph === 's').length, 1, `flow ${key}: one start`);
    assert.equal(evs.filter((e) => e.ph === 'f').length, 1, `flow ${key}: one finish`);
    const s = evs.find((e) => e.ph === 's')!;
    for (const e of evs) assert.ok(e.ts! >= s.ts!, `flow ${key}: steps after the start`);
  }
  checkNesting(byPh.get('X') ?? []);
  return byPh;
}

/** X slices on one (pid, tid) track must not partially overlap. */
export function checkNesting(xs: TraceEvent[]): void {
  const tracks = new Map<string, TraceEvent[]>();
  for (const x of xs) {
    const k = `${x.pid}/${x.tid}`;
    let l = tracks.get(k);
    if (!l) tracks.set(k, (l = []));
    l.push(x);
  }
  for (const [k, list] of tracks) {
    list.sort((a, b) => a.ts! - b.ts! || b.dur! - a.dur!);
    const stack: TraceEvent[] = [];
    for (const x of list) {
      while (stack.length && stack[stack.length - 1].ts! + stack[stack.length - 1].dur! <= x.ts! + EPS) stack.pop();
      const parent = stack[stack.length - 1];
      if (parent) {
        assert.ok(
          x.ts! + x.dur! <= parent.ts! + parent.dur! + EPS,
          `track ${k}: '${x.name}' [${x.ts}, +${x.dur}] partially overlaps '${parent.name}' [${parent.ts}, +${parent.dur}]`,
        );
      }
      stack.push(x);
    }
  }
}
