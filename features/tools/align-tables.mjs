#!/usr/bin/env node
// Aligns the Gherkin tables of the feature files in place (node tools/align-tables.mjs [files...]).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const files = process.argv.slice(2).length ? process.argv.slice(2) : fs.readdirSync(dir).filter((f) => f.endsWith('.feature')).map((f) => path.join(dir, f));
const isRow = (l) => /^\s*\|.*\|\s*$/.test(l);
for (const file of files) {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  for (let i = 0; i < lines.length; ) {
    if (!isRow(lines[i])) { i++; continue; }
    let j = i;
    while (j < lines.length && isRow(lines[j])) j++;
    const indent = lines[i].match(/^\s*/)[0];
    const rows = lines.slice(i, j).map((l) => l.trim().slice(1, -1).split('|').map((c) => c.trim()));
    const widths = rows[0].map((_, k) => Math.max(...rows.map((r) => [...(r[k] ?? '')].length)));
    for (let k = i; k < j; k++) {
      const r = rows[k - i];
      lines[k] = `${indent}| ${r.map((c, n) => c + ' '.repeat(widths[n] - [...c].length)).join(' | ')} |`;
    }
    i = j;
  }
  fs.writeFileSync(file, lines.join('\n'));
}
