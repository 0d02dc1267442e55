#!/usr/bin/env node
// Writes the ABIs the Rust crate binds (alloy `sol!` from JSON) to proxy-router/abi/<Name>.json.
// With --check it writes nothing and fails when a committed file differs from contracts/out (stale).
'use strict';
const fs = require('fs');
const path = require('path');
const { readArtifacts } = require('./abi-lib');

const CONTRACTS = [
  'LumerinDiamond',
  'ProviderRegistry',
  'ModelRegistry',
  'Marketplace',
  'SessionRouter',
  'Delegation',
  'MorpheusToken',
  'Multicall3',
];
const ABI_DIR = path.join(__dirname, '..', '..', 'proxy-router', 'abi');
const check = process.argv.includes('--check');

const byName = new Map(readArtifacts().map((a) => [a.name, a]));
const stale = [];
fs.mkdirSync(ABI_DIR, { recursive: true });
for (const name of CONTRACTS) {
  const artifact = byName.get(name);
  if (!artifact) throw new Error(`no artifact for ${name} under contracts/out`);
  const text = `${JSON.stringify(artifact.abi, null, 2)}\n`;
  const file = path.join(ABI_DIR, `${name}.json`);
  const current = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : null;
  if (current === text) continue;
  if (check) stale.push(`proxy-router/abi/${name}.json`);
  else fs.writeFileSync(file, text);
}
if (stale.length > 0) {
  console.error(`Stale ABI files (run \`make abi\` and commit): ${stale.join(', ')}`);
  process.exit(1);
}
console.log(check ? 'ABI files are up to date.' : `ABI files written to proxy-router/abi.`);
