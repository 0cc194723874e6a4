/**
 * V8 stores a number field that first held a small integer (0, -1) as a Smi; the first nanosecond sum or timestamp
 * past 2^31 (or a value read from a Float64Array) changes the field to a double, which deprecates the object's map
 * and the maps after it and deoptimises the code optimised for them ("wrong map"). A cold explain of 1M events had
 * ~35 such deopts in its first 130k events. Writing a double into the fields of the first object of a shape (a
 * factory's literal at module load, or a class instance in its constructor) fixes their representation before any
 * code is optimised; the values are left as they were.
 */
/** (keys as strings: a class's private fields are not in keyof; a key the object lacks is skipped, never added) */
export function doubleFields<T extends object>(o: T, keys: readonly string[]): T {
  const r = o as unknown as Record<string, unknown>;
  for (const k of keys) {
    if (!(k in r)) continue;
    const v = r[k];
    r[k] = 0.5;
    r[k] = v;
  }
  return o;
}

/**
 * Primed objects of the factories' shapes, kept alive: map transitions are weak, and once the primed object was
 * collected its double-field maps could be too, the next literal rebuilding the Smi-field ones.
 */
const primed: object[] = [];

/** doubleFields for a factory's first (throwaway) object at module load: the object is kept (see primed) */
export function primeDoubles<T extends object>(o: T, keys: readonly string[]): T {
  primed.push(doubleFields(o, keys));
  return o;
}
