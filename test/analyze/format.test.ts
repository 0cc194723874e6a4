import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fmtCount } from '../../src/analyze/format.js';

test('fmtCount groups thousands as en-US does, integers or not', () => {
  for (const n of [0, 7, 999, 1000, -1000, 12345, -123456, 1234567, 875264, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 1234.5678, 1e21, NaN, Infinity])
    assert.equal(fmtCount(n), n.toLocaleString('en-US'), String(n));
});
