/** The Chain contract moved to src/common/chain.ts (store/, serve/ and export/ use it too). */
export type { Severity, ChainKind, Evidence, Chain, BaselineRef } from '../common/chain.js';
