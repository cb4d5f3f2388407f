// The official x402 v1 facilitator (x402@1.2.0) verifying and settling one payment over a local node.
// stdin: {"rpcUrl", "relayerKey", "network", "paymentPayload", "paymentRequirements", "settleTimes"}
// stdout: {"verify": VerifyResponse, "settles": [SettleResponse, ...]} (one JSON object)
import { verify, settle } from "x402/facilitator";
import { createWalletClient, http, publicActions } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { base, baseSepolia } from "viem/chains";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const input = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const chain = input.network === "base-sepolia" ? baseSepolia : base;
const signer = createWalletClient({
  chain,
  transport: http(input.rpcUrl),
  account: privateKeyToAccount(input.relayerKey),
}).extend(publicActions);

const verified = await verify(signer, input.paymentPayload, input.paymentRequirements);
const settles = [];
for (let i = 0; i < (input.settleTimes ?? 1); i++) {
  try {
    settles.push(await settle(signer, input.paymentPayload, input.paymentRequirements));
  } catch (error) {
    // x402@1.2.0 throws when the contract reverts in simulation (a used nonce), instead of answering success=false
    settles.push({ success: false, thrown: String(error?.shortMessage ?? error).slice(0, 300) });
  }
}
process.stdout.write(JSON.stringify({ verify: verified, settles }) + "\n");
