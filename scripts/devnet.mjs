#!/usr/bin/env node
// Small helpers for scripts that drive local anvil chains over plain JSON-RPC (Node >= 18, no
// packages): wait until a node answers, deploy a committed test-contract artifact from anvil's
// unlocked first account, and send a call to a deployed contract.
//
//   node scripts/devnet.mjs wait   URL
//   node scripts/devnet.mjs deploy URL ARTIFACT [ARGS]   -> prints the contract address (ARGS: the
//                                     ABI-encoded constructor arguments, hex)
//   node scripts/devnet.mjs send   URL ADDRESS CALLDATA   -> prints the transaction hash
//   node scripts/devnet.mjs call   URL ARTIFACT ADDRESS 'fn(uint256,address)' ARG...
//                                  -> sends fn(args) (static uint/address/bool/bytes32 args only),
//                                     prints the transaction hash
//   node scripts/devnet.mjs view   URL ARTIFACT ADDRESS 'fn()'  -> calls a no-argument view that
//                                     returns one uint, prints it in decimal
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

async function rpc(url, method, params = []) {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
  });
  const body = await res.json();
  if (body.error) throw new Error(`${method}: ${body.error.message}`);
  return body.result;
}

async function wait(url, seconds = 20) {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    try {
      return await rpc(url, "eth_chainId");
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`${url} did not answer within ${seconds}s: ${e.message}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function send(url, tx) {
  const [from] = await rpc(url, "eth_accounts");
  const hash = await rpc(url, "eth_sendTransaction", [{ from, ...tx }]);
  for (let i = 0; i < 200; i++) {
    const receipt = await rpc(url, "eth_getTransactionReceipt", [hash]);
    if (receipt) {
      if (receipt.status !== "0x1") throw new Error(`transaction ${hash} reverted`);
      return receipt;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`transaction ${hash} was not mined within 10s`);
}

const [cmd, url, ...rest] = process.argv.slice(2);
try {
  if (cmd === "wait") {
    await wait(url);
  } else if (cmd === "deploy") {
    const artifact = JSON.parse(readFileSync(join(root, "tests/contracts/artifacts", `${rest[0]}.json`), "utf8"));
    const args = (rest[1] || "").replace(/^0x/, "");
    const receipt = await send(url, { data: artifact.bytecode + args });
    console.log(receipt.contractAddress);
  } else if (cmd === "call") {
    const [name, to, signature, ...args] = rest;
    const artifact = JSON.parse(readFileSync(join(root, "tests/contracts/artifacts", `${name}.json`), "utf8"));
    const selector = artifact.methodIdentifiers[signature];
    if (!selector) throw new Error(`${name} has no function ${signature}`);
    const words = args.map((a) => BigInt(a === "true" ? 1 : a === "false" ? 0 : a).toString(16).padStart(64, "0"));
    const receipt = await send(url, { to, data: "0x" + selector + words.join("") });
    console.log(receipt.transactionHash);
  } else if (cmd === "view") {
    const [name, to, signature] = rest;
    const artifact = JSON.parse(readFileSync(join(root, "tests/contracts/artifacts", `${name}.json`), "utf8"));
    const selector = artifact.methodIdentifiers[signature];
    if (!selector) throw new Error(`${name} has no function ${signature}`);
    const out = await rpc(url, "eth_call", [{ to, data: "0x" + selector }, "latest"]);
    console.log(BigInt(out).toString());
  } else if (cmd === "send") {
    const receipt = await send(url, { to: rest[0], data: rest[1] });
    console.log(receipt.transactionHash);
  } else {
    throw new Error("usage: devnet.mjs wait|deploy|send|call|view URL ...");
  }
} catch (e) {
  console.error(`devnet.mjs: ${e.message}`);
  process.exit(1);
}
