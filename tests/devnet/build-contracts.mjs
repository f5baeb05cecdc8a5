#!/usr/bin/env node
// Compiles tests/contracts/*.sol with the pinned npm solc and writes one artifact per contract to
// tests/contracts/artifacts/<Name>.json (ABI, bytecode, deployed bytecode, selectors, source hash).
//
//   node tests/devnet/build-contracts.mjs          rebuild the artifacts
//   node tests/devnet/build-contracts.mjs --check  exit 1 if a committed artifact is stale, missing or extra
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync, mkdirSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, "package.json"));
const solc = require("solc");
const contractsDir = join(here, "..", "contracts");
const artifactsDir = join(contractsDir, "artifacts");
const check = process.argv.includes("--check");

const files = readdirSync(contractsDir).filter((f) => f.endsWith(".sol")).sort();
const sources = Object.fromEntries(files.map((f) => [f, { content: readFileSync(join(contractsDir, f), "utf8") }]));
const input = {
  language: "Solidity",
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: "cancun",
    metadata: { bytecodeHash: "none" },
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "evm.methodIdentifiers"] } },
  },
};
const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors || []).filter((e) => e.severity === "error");
for (const e of output.errors || []) console.error(e.formattedMessage);
if (errors.length) process.exit(1);

const wanted = new Map();
for (const file of files) {
  const sourceHash = createHash("sha256").update(sources[file].content).digest("hex");
  for (const [name, c] of Object.entries(output.contracts[file] || {})) {
    const artifact = {
      contractName: name,
      sourceFile: file,
      sourceHash,
      compiler: solc.version().split("+")[0],
      abi: c.abi,
      bytecode: "0x" + c.evm.bytecode.object,
      deployedBytecode: "0x" + c.evm.deployedBytecode.object,
      // Function signature → 4-byte selector, so that scripts can call without a keccak of their own.
      methodIdentifiers: c.evm.methodIdentifiers,
    };
    wanted.set(`${name}.json`, JSON.stringify(artifact, null, 2) + "\n");
  }
}

if (check) {
  const problems = [];
  const present = existsSync(artifactsDir) ? readdirSync(artifactsDir).filter((f) => f.endsWith(".json")) : [];
  for (const [file, text] of wanted) {
    const path = join(artifactsDir, file);
    if (!existsSync(path)) problems.push(`${file} is missing`);
    else if (readFileSync(path, "utf8") !== text) problems.push(`${file} does not match its source`);
  }
  for (const file of present) if (!wanted.has(file)) problems.push(`${file} has no contract in tests/contracts`);
  if (problems.length) {
    console.error(`stale contract artifacts: ${problems.join("; ")}`);
    console.error("rebuild them with `node tests/devnet/build-contracts.mjs` and commit the result");
    process.exit(1);
  }
  console.log(`${wanted.size} artifacts match their sources`);
} else {
  mkdirSync(artifactsDir, { recursive: true });
  for (const [file, text] of wanted) writeFileSync(join(artifactsDir, file), text);
  console.log(`wrote ${wanted.size} artifacts to tests/contracts/artifacts`);
}
