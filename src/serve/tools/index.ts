/** Every tool, in the order tools/list shows them. */
import { tool as compareSessions } from './compare-sessions.js';
import { tool as getAgentHealth } from './get-agent-health.js';
import { tool as getCausalChains } from './get-causal-chains.js';
import { tool as getEvents } from './get-events.js';
import { tool as getMcpActivity } from './get-mcp-activity.js';
import { tool as getStacks } from './get-stacks.js';
import { tool as getTimeBudget } from './get-time-budget.js';
import { tool as getTraceStats } from './get-trace-stats.js';
import { tool as listSessions } from './list-sessions.js';
import { tool as runSql } from './run-sql.js';

import type { ToolDef } from '../tool.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const TOOLS: ToolDef<any, any>[] = [getTraceStats, getCausalChains, getTimeBudget, runSql, getStacks, listSessions, compareSessions, getEvents, getAgentHealth, getMcpActivity];
