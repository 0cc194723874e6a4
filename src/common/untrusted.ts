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

// ---- output: terminals and exports ----
//
// The rule for every string Causeway prints or exports (CLI lines, summaries,
// logs, `query --format table|csv|json`): characters that can move the cursor,
// retitle a window, clear a screen, reorder text or hide it are ESCAPED, not
// dropped, so the operator sees that they are there and a machine format keeps
// the value: C0 controls (TAB kept everywhere, LF kept between lines of
// multi-line text), DEL, C1 controls, bidi marks/embeddings/overrides/isolates,
// zero-width and invisible formatting characters, line/paragraph separators
// and Unicode tag characters. The escape is `\xNN` below U+0100, `\uNNNN` in
// the BMP and `\u{NNNNN}` above it. JSON output escapes them as JSON `\uNNNN`
// escapes (the parsed value is unchanged).

// eslint-disable-next-line no-control-regex
const UNSAFE_LINE = /[\u0000-\u0008\u000A-\u001F\u007F-\u009F\u00AD\u061C\u180E\u200B-\u200F\u2028-\u202E\u2060-\u2064\u2066-\u2069\uFEFF\uFFF9-\uFFFB]|[\u{E0000}-\u{E007F}]/gu;
// eslint-disable-next-line no-control-regex
const UNSAFE_TEXT = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u00AD\u061C\u180E\u200B-\u200F\u2028-\u202E\u2060-\u2064\u2066-\u2069\uFEFF\uFFF9-\uFFFB]|[\u{E0000}-\u{E007F}]/gu;
// what JSON.stringify leaves raw (it escapes C0 itself)
const UNSAFE_JSON = /[\u007F-\u009F\u00AD\u061C\u180E\u200B-\u200F\u2028-\u202E\u2060-\u2064\u2066-\u2069\uFEFF\uFFF9-\uFFFB]|[\u{E0000}-\u{E007F}]/gu;

function escapeChar(c: string): string {
  const cp = c.codePointAt(0)!;
  if (cp < 0x100) return `\\x${cp.toString(16).padStart(2, '0')}`;
  if (cp < 0x10000) return `\\u${cp.toString(16).padStart(4, '0')}`;
  return `\\u{${cp.toString(16)}}`;
}

/** One line for a terminal or a log: every unsafe character (LF and CR included) escaped. */
export function terminalLine(s: unknown): string {
  if (s === null || s === undefined) return '';
  return (typeof s === 'string' ? s : String(s)).replace(UNSAFE_LINE, escapeChar);
}

/** Multi-line text for a terminal (summaries, reports): like terminalLine, but LF separates lines. */
export function terminalText(s: unknown): string {
  if (s === null || s === undefined) return '';
  return (typeof s === 'string' ? s : String(s)).replace(UNSAFE_TEXT, escapeChar);
}

/** A CSV cell: terminalText (LF stays, inside the quotes RFC 4180 puts around it; CSV has no escape of its own for the rest). */
export function exportCell(v: unknown): string {
  return terminalText(v);
}

/** JSON.stringify whose text carries no raw unsafe character: they become \uNNNN escapes, the value is unchanged. */
export function safeJson(value: unknown, space?: number): string {
  return JSON.stringify(value, null, space).replace(UNSAFE_JSON, (c) => {
    let out = '';
    for (let i = 0; i < c.length; i++) out += `\\u${c.charCodeAt(i).toString(16).padStart(4, '0')}`;
    return out;
  });
}
