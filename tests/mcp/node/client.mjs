// Drive `imagine-agent mcp` (stdio) with the official TypeScript MCP SDK, as ElizaOS's plugin-mcp and other
// TypeScript clients do: the SDK's default 60 s request timeout, which progress does not reset.
// Usage: node client.mjs <python> ; prints one JSON report on stdout.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { ElicitRequestSchema } from "@modelcontextprotocol/sdk/types.js";

const python = process.argv[2] ?? "python3";
const TIMEOUT = 60_000; // the SDK default (DEFAULT_REQUEST_TIMEOUT_MSEC), stated explicitly
const transport = new StdioClientTransport({
  command: python, args: ["-m", "imagine_agent", "mcp"], env: process.env, stderr: "inherit",
});
const client = new Client({ name: "imagine-ts-test", version: "1.0.0" }, { capabilities: { elicitation: {} } });
const elicited = [];
client.setRequestHandler(ElicitRequestSchema, async (request) => {
  elicited.push(request.params.message);
  return { action: "accept", content: { approve: true } };
});
await client.connect(transport);

const report = { server: client.getServerVersion(), elicited, progress: 0, waits: 0 };
report.tools = (await client.listTools()).tools;
const options = { timeout: TIMEOUT, resetTimeoutOnProgress: false, onprogress: () => { report.progress += 1; } };

const bad = await client.callTool({ name: "generate_video", arguments: { prompt: "a cat", duration: true } },
  undefined, options);
report.badDuration = { isError: bad.isError, text: bad.content.map((c) => c.text).join("\n") };

// 8 s costs 1 USDC, over the 0.5 USDC approval threshold the test sets: the person is asked (elicitation).
const first = await client.callTool({ name: "generate_video", arguments: { prompt: "a heron over a lake", duration: 8 } },
  undefined, options);
report.first = first.structuredContent ?? { isError: first.isError, text: first.content.map((c) => c.text).join("\n") };
let last = report.first;
while (last && last.status === "still_running" && report.waits < 100) {
  report.waits += 1;
  const next = await client.callTool({ name: "wait_for_video", arguments: { task_id: last.taskId } }, undefined, options);
  last = next.structuredContent ?? { isError: next.isError, text: next.content.map((c) => c.text).join("\n") };
}
report.final = last;
await client.close();
process.stdout.write(JSON.stringify(report) + "\n");
