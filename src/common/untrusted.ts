/**
 * Hygiene for text that came from outside Causeway's control (traced comm /
 * paths / symbols, MCP client names, SQL result strings) before it is shown
 * to a person or handed to a model. It does not make text trustworthy: it
 * removes the characters used to hide or reorder content (terminal escapes,
 * bidi overrides, zero-width characters) and caps the length, so what a
 * reader sees is what is there. Structured output should still mark such
 * fields as untrusted.
 */

// The one rule for traced and other outside text, stored or served (stored and served text may
// differ in what they mark as untrusted, never in what they strip):
//   1. ANSI escape sequences (CSI "ESC [ ... final", OSC "ESC ] ... BEL|ST") are removed whole, so no
//      half-sequence such as "[31m" is left to look like content;
//   2. TAB, LF, CR, and the line/paragraph separators U+2028/U+2029 become one space each: one traced
//      string stays one line;
//   3. every other C0 control, DEL, C1 control, bidi embedding/override/isolate/mark, zero-width or
//      invisible formatting character, interlinear annotation and Unicode tag character is removed;
//   4. the result is capped at maxLen code points, a trailing '…' marking a cut.
// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)?/g;
// eslint-disable-next-line no-control-regex
const SPACES = /[\t\n\r\u2028\u2029]/g;
// C0 (TAB/LF/CR are spaces by now), DEL, C1.
// eslint-disable-next-line no-control-regex
const CONTROLS = /[\u0000-\u001F\u007F-\u009F]/g;
// Bidi embeddings/overrides (U+202A-U+202E), isolates (U+2066-U+2069), LRM/RLM/ALM.
const BIDI = /[\u202A-\u202E\u2066-\u2069\u200E\u200F\u061C]/g;
// Zero-width and invisible formatting: ZWSP, ZWNJ, ZWJ, word joiner, invisible operators, BOM, soft hyphen,
// Mongolian vowel separator, interlinear annotation anchors.
const INVISIBLE = /[\u200B-\u200D\u2060-\u2064\uFEFF\u00AD\u180E\uFFF9-\uFFFB]/g;
// Unicode "tag" characters (U+E0000-U+E007F), used to smuggle invisible instructions.
const TAGS = /[\u{E0000}-\u{E007F}]/gu;

export const TRUNCATION_MARK = '…';

/**
 * Clean one string by the rule above. null/undefined stay null; other
 * non-strings are stringified. The one cleaner: the store (before writing),
 * the MCP tools (before serving) and the exporters call it.
 */
export function cleanTraced(s: unknown, maxLen = 256): string | null {
  if (s === null || s === undefined) return null;
  let text = typeof s === 'string' ? s : String(s);
  text = text.replace(ANSI, '').replace(SPACES, ' ').replace(CONTROLS, '').replace(BIDI, '').replace(INVISIBLE, '').replace(TAGS, '');
  if (maxLen <= 0) return '';
  if (text.length <= maxLen) return text; // fewer UTF-16 units than maxLen: fewer code points too
  const cps = Array.from(text);
  if (cps.length <= maxLen) return text;
  return cps.slice(0, Math.max(0, maxLen - 1)).join('') + TRUNCATION_MARK;
}

/** cleanTraced, with null/undefined as '' (for text that is always shown). */
export function sanitizeUntrusted(s: unknown, maxLen = 256): string {
  return cleanTraced(s, maxLen) ?? '';
}
