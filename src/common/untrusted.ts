/**
 * Hygiene for text that came from outside Causeway's control (traced comm /
 * paths / symbols, MCP client names, SQL result strings) before it is shown
 * to a person or handed to a model. It does not make text trustworthy: it
 * removes the characters used to hide or reorder content (terminal escapes,
 * bidi overrides, zero-width characters) and caps the length, so what a
 * reader sees is what is there. Structured output should still mark such
 * fields as untrusted.
 */

// C0 controls except TAB and LF, DEL, C1 controls.
const CONTROLS = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F]/g;
// Bidi embeddings/overrides (U+202A-U+202E), isolates (U+2066-U+2069), LRM/RLM/ALM.
const BIDI = /[\u202A-\u202E\u2066-\u2069\u200E\u200F\u061C]/g;
// Zero-width and invisible formatting: ZWSP, ZWNJ, ZWJ, word joiner, invisible operators, BOM, soft hyphen, Mongolian vowel separator.
const INVISIBLE = /[\u200B-\u200D\u2060-\u2064\uFEFF\u00AD\u180E]/g;
// Unicode "tag" characters (U+E0000-U+E007F), used to smuggle invisible instructions.
const TAGS = /[\u{E0000}-\u{E007F}]/gu;

export const TRUNCATION_MARK = '…';

/**
 * Cap `s` to `maxLen` code points (a trailing '…' marks a cut) after removing
 * C0/C1 controls (TAB and LF kept), bidi controls, zero-width characters and
 * tag characters. Non-strings are stringified; null/undefined become ''.
 */
export function sanitizeUntrusted(s: unknown, maxLen = 256): string {
  if (s === null || s === undefined) return '';
  let text = typeof s === 'string' ? s : String(s);
  // Controls are dropped, not replaced: "a\x1b[2Jb" reads "a[2Jb", a visible, inert remainder.
  text = text.replace(CONTROLS, '').replace(BIDI, '').replace(INVISIBLE, '').replace(TAGS, '');
  if (maxLen <= 0) return '';
  const cps = Array.from(text);
  if (cps.length <= maxLen) return text;
  return cps.slice(0, Math.max(0, maxLen - 1)).join('') + TRUNCATION_MARK;
}

/** True when sanitizeUntrusted would change `s` (for flagging suspicious input). */
export function hasHiddenCharacters(s: string): boolean {
  return new RegExp(CONTROLS.source).test(s) || new RegExp(BIDI.source).test(s) || new RegExp(INVISIBLE.source).test(s) || new RegExp(TAGS.source, 'u').test(s);
}
