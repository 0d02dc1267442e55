#!/usr/bin/env node
// Checks that the union of the ABIs under contracts/out holds every entry of abi-reference.txt (the
// reference diamond's functions with selectors and return tuples, events with indexing, errors).
'use strict';
const fs = require('fs');
const path = require('path');
const { describe, readArtifacts } = require('./abi-lib');

const reference = fs
  .readFileSync(path.join(__dirname, '..', 'abi-reference.txt'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));

const have = new Set();
const selectors = new Map(); // "name(types)" -> selector
for (const artifact of readArtifacts()) {
  for (const entry of artifact.abi) {
    const line = describe(entry);
    if (line) have.add(line);
  }
  for (const [signature, selector] of Object.entries(artifact.methodIdentifiers)) {
    selectors.set(signature, `0x${selector}`);
  }
}

const missing = [];
for (const line of reference) {
  if (line.startsWith('function ')) {
    const [, selector, rest] = line.match(/^function (0x[0-9a-f]{8}) (.*)$/) || [];
    if (!selector) {
      missing.push(`malformed reference line: ${line}`);
      continue;
    }
    if (!have.has(`function ${rest}`)) missing.push(`function ${rest}`);
    const signature = rest.split(' -> ')[0];
    if (selectors.has(signature) && selectors.get(signature) !== selector) {
      missing.push(`selector of ${signature} is ${selectors.get(signature)}, reference ${selector}`);
    }
  } else if (!have.has(line)) {
    missing.push(line);
  }
}

if (missing.length > 0) {
  console.error(`ABI check failed: ${missing.length} reference entries are missing or differ:`);
  for (const m of missing) console.error(`  ${m}`);
  process.exit(1);
}
console.log(`ABI check passed: all ${reference.length} reference entries are present in contracts/out.`);
