// The official x402 implementations, driven by tests/interop: resource servers, paying clients, schemas.
//
//   node interop.mjs server-v1 <facilitatorUrl> <payTo>   x402-express@1 on a free loopback port
//   node interop.mjs server-v2 <facilitatorUrl> <payTo>   @x402/express@2 (facilitator client over HTTP)
//   node interop.mjs server-v2-ids <facilitatorUrl> <payTo>  the same, declaring payment-identifier (required);
//                                                          its 202 names the id the extension extracted
//   node interop.mjs pay-v1 <url> <privateKey> <json>     x402-fetch@1 POSTs <json> and pays
//   node interop.mjs pay-v2 <url> <privateKey> <json>     @x402/fetch@2 (+ registered v1) POSTs and pays
//   node interop.mjs validate                             stdin: {kind: [values]} -> their zod schemas' verdicts
//
// Servers print one line `listening <port>` when ready; everything else prints one JSON object.
import { randomUUID } from "node:crypto";

const [command, ...args] = process.argv.slice(2);
const CREATE = "/generation/create";
const DESCRIPTION = "Generate a video (interop test)";

function listen(app) {
  const server = app.listen(0, "127.0.0.1", () => {
    process.stdout.write(`listening ${server.address().port}\n`);
  });
  process.on("SIGTERM", () => server.close(() => process.exit(0)));
}

function created(req, res) {
  res.status(202).json({ taskId: randomUUID() });
}

async function serverV1(facilitatorUrl, payTo) {
  const express = (await import("express")).default;
  const { paymentMiddleware } = await import("x402-express");
  const app = express();
  app.use(paymentMiddleware(payTo, {
    [`POST ${CREATE}`]: { price: "$0.50", network: "base", config: { description: DESCRIPTION } },
  }, { url: facilitatorUrl }));
  app.post(CREATE, created);
  listen(app);
}

async function serverV2(facilitatorUrl, payTo, withIds = false) {
  const express = (await import("express")).default;
  const { paymentMiddleware, x402ResourceServer } = await import("@x402/express");
  const { ExactEvmScheme } = await import("@x402/evm/exact/server");
  const { HTTPFacilitatorClient } = await import("@x402/core/server");
  const resourceServer = new x402ResourceServer(new HTTPFacilitatorClient({ url: facilitatorUrl }))
    .register("eip155:8453", new ExactEvmScheme());
  const ids = withIds ? await import("@x402/extensions/payment-identifier") : null;
  if (ids) resourceServer.registerExtension(ids.paymentIdentifierResourceServerExtension);
  const app = express();
  app.use(paymentMiddleware({
    [`POST ${CREATE}`]: {
      accepts: { scheme: "exact", price: "$0.50", network: "eip155:8453", payTo },
      description: DESCRIPTION,
      mimeType: "application/json",
      ...(ids ? { extensions: { [ids.PAYMENT_IDENTIFIER]: ids.declarePaymentIdentifierExtension(true) } } : {}),
    },
  }, resourceServer));
  app.post(CREATE, (req, res) => {
    if (!ids) return created(req, res);
    const payload = JSON.parse(Buffer.from(req.get("payment-signature"), "base64").toString("utf8"));
    res.status(202).json({ taskId: randomUUID(), paymentId: ids.extractPaymentIdentifier(payload) });
  });
  listen(app);
}

// A fetch that remembers the payment headers it sent (so the test can decode them with our models).
function recording(sent) {
  return async (input, init = {}) => {
    const request = input instanceof Request ? input : new Request(input, init);
    for (const name of ["x-payment", "payment-signature"]) {
      const value = request.headers.get(name);
      if (value) sent.push({ name, value });
    }
    return fetch(request);
  };
}

async function report(response, sent) {
  const headers = {};
  for (const name of ["payment-response", "x-payment-response", "payment-required"]) {
    const value = response.headers.get(name);
    if (value) headers[name] = value;
  }
  const text = await response.text();
  process.stdout.write(JSON.stringify({ status: response.status, body: text, headers, sent }) + "\n");
}

function post(json) {
  return { method: "POST", headers: { "content-type": "application/json" }, body: json };
}

async function payV1(url, key, json) {
  const { createWalletClient, http } = await import("viem");
  const { privateKeyToAccount } = await import("viem/accounts");
  const { base } = await import("viem/chains");
  const { wrapFetchWithPayment } = await import("x402-fetch");
  const wallet = createWalletClient({ account: privateKeyToAccount(key), transport: http("http://127.0.0.1:9"), chain: base });
  const sent = [];
  const pay = wrapFetchWithPayment(recording(sent), wallet, BigInt(5_000_000));
  await report(await pay(url, post(json)), sent);
}

async function payV2(url, key, json) {
  const { privateKeyToAccount } = await import("viem/accounts");
  const { wrapFetchWithPayment, x402Client } = await import("@x402/fetch");
  const { ExactEvmScheme } = await import("@x402/evm/exact/client");
  const { ExactEvmSchemeV1 } = await import("@x402/evm/exact/v1/client");
  const account = privateKeyToAccount(key);
  const client = new x402Client()
    .register("eip155:*", new ExactEvmScheme(account))
    .registerV1("base", new ExactEvmSchemeV1(account));
  const sent = [];
  const pay = wrapFetchWithPayment(recording(sent), client);
  await report(await pay(url, post(json)), sent);
}

async function validate() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const input = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  const v2 = await import("@x402/core/schemas");
  const v1 = await import("x402/types");
  const schemas = {
    paymentRequiredV2: v2.PaymentRequiredV2Schema,
    paymentPayloadV2: v2.PaymentPayloadV2Schema,
    paymentPayloadV1: v1.PaymentPayloadSchema,
    paymentRequirementsV1: v1.PaymentRequirementsSchema,
    settleResponseV1: v1.SettleResponseSchema,
  };
  const out = {};
  for (const [kind, values] of Object.entries(input)) {
    out[kind] = values.map((value) => {
      const result = schemas[kind].safeParse(value);
      return result.success ? "ok" : result.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    });
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}

const commands = { "server-v1": serverV1, "server-v2": serverV2,
  "server-v2-ids": (facilitatorUrl, payTo) => serverV2(facilitatorUrl, payTo, true), "pay-v1": payV1, "pay-v2": payV2, validate };
if (!commands[command]) {
  process.stderr.write(`unknown command ${command}; one of ${Object.keys(commands).join(", ")}\n`);
  process.exit(2);
}
commands[command](...args).catch((error) => {
  process.stdout.write(JSON.stringify({ error: String(error?.stack || error) }) + "\n");
  process.exit(1);
});
