/** Traced strings (comm, paths) are untrusted data: capped and cleaned at the boundary. */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]/g;

export function sanitizeComm(s: string, max = 64): string {
  const clean = s.replace(UNSAFE, '');
  return clean.length > max ? clean.slice(0, max) : clean;
}
