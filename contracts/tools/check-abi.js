#!/usr/bin/env node
// Checks that the union of the ABIs under contracts/out holds every entry of abi-reference.txt (the
// reference diamond's functions with selectors, return tuples and state mutability, events with
// indexing, errors with parameters), and that no artifact declares a reference function differently
// (an interface saying `view` does not hide a facet saying `pure`).
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
const declared = new Map(); // "name(types)" -> [{line, file}] of every artifact declaring it
for (const artifact of readArtifacts()) {
  for (const entry of artifact.abi) {
    const line = describe(entry);
    if (!line) continue;
    have.add(line);
    if (entry.type === 'function') {
      const signature = line.slice('function '.length).split(' -> ')[0];
      if (!declared.has(signature)) declared.set(signature, []);
      declared.get(signature).push({ line, file: artifact.file });
    }
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
    for (const other of declared.get(signature) || []) {
      if (other.line !== `function ${rest}`) {
        missing.push(`${other.file} declares ${other.line.slice('function '.length)}, reference ${rest}`);
      }
    }
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
