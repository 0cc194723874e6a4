/**
 * Local errors carry a string code, the problem and the fix. The CLI maps codes
 * to exit statuses (GUIDE §5): 1 usage, 2 environment, 3 bad input.
 */
export type ErrorCode =
  | 'USAGE'
  | 'ENV' // cannot attach, missing library, no BTF, not root
  | 'NO_TARGET' // command not found / pid gone
  | 'NO_DB'
  | 'BAD_DB'
  | 'BAD_SQL'
  | 'SQL_REFUSED' // write attempt or forbidden statement
  | 'SQL_TIMEOUT'
  | 'SQL_BUSY' // the caller's queue of pending queries is full
  | 'DISK_FULL'
  | 'INTERNAL';

export class CausewayError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly fix?: string,
    readonly data?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'CausewayError';
  }
}

export function exitCodeFor(code: ErrorCode): number {
  switch (code) {
    case 'USAGE':
      return 1;
    case 'ENV':
    case 'NO_TARGET':
    case 'DISK_FULL':
      return 2;
    case 'NO_DB':
    case 'BAD_DB':
    case 'BAD_SQL':
    case 'SQL_REFUSED':
    case 'SQL_TIMEOUT':
    case 'SQL_BUSY':
      return 3;
    default:
      return 1;
  }
}
