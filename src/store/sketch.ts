/**
 * DDSketch helpers: the aggregates table stores sketches serialized in the
 * DDSketch protobuf format (DataDog/sketches-proto `DDSketch`: mapping = 1,
 * positiveValues = 2, negativeValues = 3, zeroCount = 4; Store
 * contiguousBinCounts = 2 packed, contiguousBinIndexOffset = 3 sint32), so other
 * DDSketch implementations can read them.
 *
 * The wire codec is written here: @datadog/sketches-js 2.1.1 require()s
 * `protobufjs/minimal` for toProto/fromProto without declaring the dependency,
 * and it is not installed. Only the in-memory sketch (accept, merge,
 * getValueAtQuantile) of the library is used.
 *
 * Quantiles are within SKETCH_ACCURACY relative error; min/max are kept
 * exactly by the aggregates row (the sketch format does not carry them).
 */
import sketches from '@datadog/sketches-js';

export const SKETCH_ACCURACY = 0.01;

export type Sketch = InstanceType<typeof sketches.DDSketch>;

interface DenseStoreLike {
  bins: number[];
  count: number;
  minKey: number;
  maxKey: number;
  offset: number;
  add(key: number, weight?: number): void;
}
interface MappingLike {
  gamma: number;
  _offset: number;
}

export function newSketch(): Sketch {
  return new sketches.DDSketch({ relativeAccuracy: SKETCH_ACCURACY });
}

// ---- protobuf wire helpers ----

class Out {
  buf = Buffer.allocUnsafe(256);
  len = 0;
  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const b = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(b, 0, 0, this.len);
    this.buf = b;
  }
  varint(v: number): void {
    this.ensure(10);
    // v is a non-negative integer below 2^53
    while (v >= 0x80) {
      this.buf[this.len++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.len++] = v;
  }
  double(v: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(v, this.len);
    this.len += 8;
  }
  bytes(b: Buffer): void {
    this.ensure(b.length);
    b.copy(this.buf, this.len);
    this.len += b.length;
  }
  result(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.len));
  }
}

const zigzag = (n: number): number => (n >= 0 ? n * 2 : -n * 2 - 1);
const unzigzag = (n: number): number => (n % 2 === 0 ? n / 2 : -(n + 1) / 2);

function encodeStore(s: DenseStoreLike): Buffer {
  const o = new Out();
  if (s.count > 0) {
    const lo = s.minKey - s.offset;
    const hi = s.maxKey - s.offset;
    o.varint((2 << 3) | 2);
    o.varint((hi - lo + 1) * 8);
    for (let i = lo; i <= hi; i++) o.double(s.bins[i] ?? 0);
    o.varint((3 << 3) | 0);
    o.varint(zigzag(s.minKey));
  }
  return o.result();
}

/** Serialize to the DDSketch protobuf format (trimmed to the used bins). */
export function sketchToBytes(sk: Sketch): Buffer {
  const m = sk.mapping as unknown as MappingLike;
  const o = new Out();
  const mo = new Out();
  mo.varint((1 << 3) | 1);
  mo.double(m.gamma);
  if (m._offset !== 0) {
    mo.varint((2 << 3) | 1);
    mo.double(m._offset);
  }
  // interpolation NONE (0) is the proto3 default: omitted
  const mb = mo.result();
  o.varint((1 << 3) | 2);
  o.varint(mb.length);
  o.bytes(mb);
  for (const [field, store] of [
    [2, sk.store],
    [3, sk.negativeStore],
  ] as const) {
    const sb = encodeStore(store as unknown as DenseStoreLike);
    o.varint((field << 3) | 2);
    o.varint(sb.length);
    o.bytes(sb);
  }
  if (sk.zeroCount !== 0) {
    o.varint((4 << 3) | 1);
    o.double(sk.zeroCount);
  }
  return o.result();
}

class In {
  pos: number;
  constructor(
    readonly b: Uint8Array,
    start = 0,
    readonly end = b.length,
  ) {
    this.pos = start;
  }
  varint(): number {
    let v = 0;
    let mul = 1;
    for (;;) {
      if (this.pos >= this.end) throw new Error('truncated varint');
      const c = this.b[this.pos++];
      v += (c & 0x7f) * mul;
      if (c < 0x80) return v;
      mul *= 0x80;
      if (mul > 2 ** 63) throw new Error('varint too long');
    }
  }
  double(): number {
    if (this.pos + 8 > this.end) throw new Error('truncated double');
    const v = Buffer.from(this.b.buffer, this.b.byteOffset + this.pos, 8).readDoubleLE(0);
    this.pos += 8;
    return v;
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) {
      const len = this.varint();
      this.pos += len;
    }
    else if (wire === 5) this.pos += 4;
    else throw new Error(`unsupported wire type ${wire}`);
  }
}

interface DecodedStore {
  bins: Array<[number, number]>; // key, count
}

function decodeStore(r: In, end: number): DecodedStore {
  const s = new In(r.b, r.pos, end);
  const contiguous: number[] = [];
  let offset = 0;
  const bins: Array<[number, number]> = [];
  while (s.pos < end) {
    const tag = s.varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (field === 1 && wire === 2) {
      // map<sint32, double> entry
      const eEndLen = s.varint();
      const eEnd = s.pos + eEndLen;
      let k = 0;
      let v = 0;
      while (s.pos < eEnd) {
        const t = s.varint();
        if (t === 0x08) k = unzigzag(s.varint());
        else if (t === 0x11) v = s.double();
        else s.skip(t & 7);
      }
      bins.push([k, v]);
    } else if (field === 2 && wire === 2) {
      const pEndLen = s.varint();
      const pEnd = s.pos + pEndLen;
      while (s.pos < pEnd) contiguous.push(s.double());
    } else if (field === 2 && wire === 1) {
      contiguous.push(s.double());
    } else if (field === 3 && wire === 0) {
      offset = unzigzag(s.varint());
    } else s.skip(wire);
  }
  contiguous.forEach((c, i) => {
    if (c !== 0) bins.push([offset + i, c]);
  });
  return { bins };
}

/** Decode a stored sketch; min/max/sum come from the aggregates row when given. */
export function sketchFromBytes(b: Uint8Array, stats?: { min: number; max: number; sum: number }): Sketch {
  const r = new In(b);
  let gamma = NaN;
  let indexOffset = 0;
  let interpolation = 0;
  let pos: DecodedStore = { bins: [] };
  let neg: DecodedStore = { bins: [] };
  let zeroCount = 0;
  while (r.pos < r.end) {
    const tag = r.varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (field === 1 && wire === 2) {
      const endLen = r.varint();
      const end = r.pos + endLen;
      while (r.pos < end) {
        const t = r.varint();
        if (t === 0x09) gamma = r.double();
        else if (t === 0x11) indexOffset = r.double();
        else if (t === 0x18) interpolation = r.varint();
        else r.skip(t & 7);
      }
    } else if ((field === 2 || field === 3) && wire === 2) {
      const endLen = r.varint();
      const end = r.pos + endLen;
      const st = decodeStore(r, end);
      r.pos = end;
      if (field === 2) pos = st;
      else neg = st;
    } else if (field === 4 && wire === 1) {
      zeroCount = r.double();
    } else r.skip(wire);
  }
  const sk = newSketch();
  const m = sk.mapping as unknown as MappingLike;
  if (!(Math.abs(gamma - m.gamma) < 1e-12) || indexOffset !== 0 || interpolation !== 0) {
    throw new Error(`sketch mapping (gamma ${gamma}, offset ${indexOffset}, interpolation ${interpolation}) differs from this Causeway's`);
  }
  const ps = sk.store as unknown as DenseStoreLike;
  const ns = sk.negativeStore as unknown as DenseStoreLike;
  for (const [k, c] of pos.bins) ps.add(k, c);
  for (const [k, c] of neg.bins) ns.add(k, c);
  sk.zeroCount = zeroCount;
  sk.count = ps.count + ns.count + zeroCount;
  if (stats) {
    sk.min = stats.min;
    sk.max = stats.max;
    sk.sum = stats.sum;
  }
  return sk;
}

/** Quantile clamped to the exact [min, max] (the sketch alone can overshoot by its accuracy). */
export function sketchQuantile(sk: Sketch, q: number): number {
  const v = sk.getValueAtQuantile(q);
  if (Number.isNaN(v)) return v;
  return Math.min(Math.max(v, sk.min), sk.max);
}
