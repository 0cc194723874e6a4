/**
 * Where each probed CUDA op lives in one library: the first of the op's
 * `symbols` (preference order, src/common/ops.ts) that the file defines, its
 * uprobe file offset, and the uprobe cost class of its first instruction.
 */
import { CUDA_OPS, Source, type OpInfo } from '../common/ops.js';
import { withElf, resolveInElf, uprobeCostClass, type UprobeCost } from './elf.js';

export interface OpAttachPoint {
  op: string;
  code: number;
  /** the symbol chosen, with its version */
  symbol: string;
  version: string | null;
  isDefault: boolean;
  offset: number;
  /** first bytes at the offset, hex */
  firstBytes: string;
  cost: UprobeCost;
}

/**
 * Attach points for ops in the file at `path`. `which` picks the op set:
 * 'cudart' / 'static' = runtime ops, 'cuda' = driver ops, or an explicit list.
 * Ops the file does not define are absent from the result.
 */
export function resolveOpSymbols(path: string, which: 'cudart' | 'static' | 'cuda' | readonly OpInfo[]): OpAttachPoint[] {
  const ops = Array.isArray(which)
    ? (which as readonly OpInfo[])
    : CUDA_OPS.filter((o) => o.source === (which === 'cuda' ? Source.CUDA_DRV : Source.CUDA_RT));
  return withElf(path, (elf) => {
    const res = resolveInElf(elf, [...new Set(ops.flatMap((o) => o.symbols))]);
    const out: OpAttachPoint[] = [];
    for (const op of ops) {
      for (const s of op.symbols) {
        const r = res.get(s);
        if (!r) continue;
        const bytes = elf.bytesAt(r.offset, 16);
        out.push({ op: op.name, code: op.code, symbol: r.name, version: r.version, isDefault: r.isDefault, offset: r.offset, firstBytes: bytes.toString('hex'), cost: uprobeCostClass(bytes) });
        break;
      }
    }
    return out;
  });
}
