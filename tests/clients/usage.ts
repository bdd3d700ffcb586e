// A console's calls, type-checked against the types openapi-typescript generates from
// infra/apim/openapi.json (tests/clients/test_generated_clients.py writes them to api.d.ts beside
// a copy of this file): a field renamed or a response dropped fails `tsc --noEmit`.
import type { components, operations, paths } from "./api";

type Agent = components["schemas"]["AgentRead"];
type Page = components["schemas"]["ConversationPage"];
type History = components["schemas"]["History"];
type Problem = components["schemas"]["Problem"];

type Json<Op extends keyof operations, Status extends number> = operations[Op] extends {
  responses: { [S in Status]: { content: { "application/json": infer T } } };
}
  ? T
  : never;

const created: Json<"createAgent", 201> = { id: "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", message: "AI Agent created successfully" };
const page: Json<"listConversations", 200> = { items: [], total: 0, page: 1, limit: 20 };
const history: Json<"getStatisticsHistory", 200> = { granularity: "week", series: [] };

export function agentName(agent: Agent): string {
  return agent.name;
}

export function firstCall(p: Page): string | undefined {
  return p.items[0]?.id;
}

export function totals(h: History): number {
  return h.series.reduce((sum, point) => sum + point.total, 0);
}

export function describe(problem: Problem): string {
  return `${problem.status} ${problem.title}: ${problem.detail}`;
}

// Every path a console uses exists, with the method it uses.
export const routes: Array<keyof paths> = [
  "/kalimera/ai-agent",
  "/kalimera/conversations",
  "/kalimera/statistics/history",
  "/kalimera/tokens",
];
export const samples = [created, page, history];
