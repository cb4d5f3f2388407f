// Loads @elizaos/core 1.7.2 with @elizaos/plugin-mcp 1.8.2 (its CommonJS build: the ESM build imports
// getRequestContext, which core 1.7.2 lacks) and @elizaos/plugin-bootstrap 1.7.2 (which lists MCP actions
// to the model), starts plugin-mcp's own MCP service on character.json's `imagine` server, and calls it the
// way the agent's CALL_MCP_TOOL action does: quote, generate (returns still_running before plugin-mcp's
// 60 s timeout when the render is longer), then wait_for_video until the video is there.
//   npm ci && node check.cjs                       # uses `imagine-agent` on PATH, the embedded sandbox
//   IMAGINE_MCP_COMMAND='["/path/python","-m","imagine_agent","mcp"]' node check.cjs
// Prints one JSON report on stdout; exits non-zero when anything fails.
const fs = require("node:fs");
const path = require("node:path");
const core = require("@elizaos/core");
const { McpService } = require("@elizaos/plugin-mcp");

async function main() {
  const character = JSON.parse(fs.readFileSync(path.join(__dirname, "character.json"), "utf8"));
  const server = character.settings.mcp.servers.imagine;
  if (process.env.IMAGINE_MCP_COMMAND) {
    const [command, ...args] = JSON.parse(process.env.IMAGINE_MCP_COMMAND);
    Object.assign(server, { command, args });
  }
  // plugin-mcp passes the server only its `env` (and PATH): forward the operator's IMAGINE_* settings.
  for (const [key, value] of Object.entries(process.env)) {
    if (key.startsWith("IMAGINE_") && key !== "IMAGINE_MCP_COMMAND") server.env[key] = value;
  }
  const bootstrap = await import("@elizaos/plugin-bootstrap"); // ESM only
  const runtime = new core.AgentRuntime({ character, plugins: [] });
  const report = { bootstrap: (bootstrap.default ?? bootstrap.bootstrapPlugin)?.name, waits: 0 };
  const mcp = await McpService.start(runtime);
  try {
    const [imagine] = mcp.getServers();
    report.server = { name: imagine?.name, status: imagine?.status };
    report.tools = (imagine?.tools ?? []).map((t) => t.name).sort();
    const call = async (tool, args) => {
      const result = await mcp.callTool("imagine", tool, args);
      return result.structuredContent ?? { isError: result.isError, text: result.content.map((c) => c.text).join("\n") };
    };
    report.quote = await call("quote_video", { prompt: "a lighthouse in fog", duration: 2 });
    report.first = await call("generate_video", { prompt: "a lighthouse in fog", duration: 2 });
    let last = report.first;
    while (last.status === "still_running" && report.waits < 100) {
      report.waits += 1;
      last = await call("wait_for_video", { task_id: last.taskId });
    }
    report.final = last;
  } finally {
    await mcp.stop();
  }
  // plugin-mcp leaves a 60 s connection-timeout timer behind: exit explicitly once stdout is flushed.
  process.stdout.write(JSON.stringify(report) + "\n", () => process.exit(report.final?.status === "completed" ? 0 : 1));
}

main().catch((error) => {
  process.stderr.write(`check failed: ${error?.stack ?? error}\n`);
  process.exit(1);
});
