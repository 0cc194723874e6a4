/**
 * Discovery: which libraries and processes to probe, and how to name what
 * their stacks point at. Pure TypeScript over /proc and ELF files; no addon.
 */
export {
  Elf,
  ET,
  withElf,
  parseElf,
  isElf64,
  resolveSymbols,
  resolveInElf,
  firstInstructionBytes,
  uprobeCostClass,
  type ElfFile,
  type ElfSymbol,
  type ProgramHeader,
  type SectionHeader,
  type SymbolType,
  type SymbolBind,
  type ResolvedSymbol,
  type UprobeCost,
} from './elf.js';
export {
  discoverLibraries,
  findStaticCudart,
  libraryKindOf,
  versionFromName,
  parseLdCache,
  parseLdconfigOutput,
  searchRoots,
  devFromMaps,
  glob,
  STATIC_CUDART_MARKERS,
  type LibraryTarget,
  type LibraryKind,
  type FoundBy,
  type DiscoverOptions,
  type LdCacheEntry,
  type StaticCudart,
} from './libraries.js';
export {
  parseMaps,
  readMaps,
  listPids,
  pidsMappingInode,
  readComm,
  readCmdline,
  readExe,
  readStatus,
  parseStatus,
  hostPath,
  makedev,
  type MapEntry,
  type ProcStatus,
} from './procmaps.js';
export { parseCgroup, identityFromPath, readIdentity, type ProcessIdentity, type Runtime } from './identity.js';
export { Symbolizer, mappingsFromMaps, MAX_SYMBOL_LEN, MAX_PATH_LEN, type MappingRow, type Frame, type SymbolizerOptions } from './symbolize.js';
export { resolveOpSymbols, type OpAttachPoint } from './ops.js';
