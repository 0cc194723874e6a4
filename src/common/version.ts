/** Causeway's version: the one place it is written (CLI, MCP server, sessions.causeway_version, OTLP). */
export const CAUSEWAY_VERSION = '0.1.0';
