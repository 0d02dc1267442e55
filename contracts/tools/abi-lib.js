// Shared helpers for the ABI tools: reading forge artifacts and writing canonical signatures.
'use strict';
const fs = require('fs');
const path = require('path');

const OUT_DIR = path.join(__dirname, '..', 'out');

/** Canonical type of an ABI parameter, with tuples expanded: `(address,uint8,bytes4[])[]`. */
function canonicalType(param) {
  if (param.type.startsWith('tuple')) {
    return `(${param.components.map(canonicalType).join(',')})${param.type.slice('tuple'.length)}`;
  }
  return param.type;
}

/** One line per ABI entry, in the format of abi-reference.txt (functions without the selector). */
function describe(entry) {
  const types = (params) => (params || []).map(canonicalType).join(',');
  switch (entry.type) {
    case 'function':
      return `function ${entry.name}(${types(entry.inputs)}) -> (${types(entry.outputs)}) ${entry.stateMutability}`;
    case 'event':
      return `event ${entry.name}(${entry.inputs
        .map((p) => canonicalType(p) + (p.indexed ? ' indexed' : ''))
        .join(',')})`;
    case 'error':
      return `error ${entry.name}(${types(entry.inputs)})`;
    default:
      return null;
  }
}

/** Every artifact under contracts/out as {name, file, abi, methodIdentifiers}. */
function readArtifacts() {
  if (!fs.existsSync(OUT_DIR)) {
    throw new Error('contracts/out is missing: run `make contracts` first');
  }
  const artifacts = [];
  for (const dir of fs.readdirSync(OUT_DIR)) {
    if (dir === 'build-info' || !dir.endsWith('.sol')) continue;
    for (const file of fs.readdirSync(path.join(OUT_DIR, dir))) {
      if (!file.endsWith('.json')) continue;
      const json = JSON.parse(fs.readFileSync(path.join(OUT_DIR, dir, file), 'utf8'));
      artifacts.push({
        name: file.slice(0, -'.json'.length),
        file: `${dir}/${file}`,
        abi: json.abi || [],
        methodIdentifiers: json.methodIdentifiers || {},
      });
    }
  }
  return artifacts;
}

module.exports = { canonicalType, describe, readArtifacts };
