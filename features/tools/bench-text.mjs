// Reads the tables the benchmarks in bench/ print (bench/faultproxy.sh, bench/user_service.sh) out of
// their text output, for the charts of reports/bench/index.html (bench-report.mjs). A table starts at a
// line whose first column is "figure" and ends at a blank line; its columns are separated by two or
// more spaces, and a cell belongs to the header column it starts nearest to (a wide cell may push the
// ones after it a little to the right; a row with a cell in every column is taken in order). Ratios are read as the scripts print them:
//   "450 (0.57x)"    in a target's column: that target's ratio to the baseline, which is the column of
//                    the row with a value but no ratio (faultproxy.sh: "direct");
//   "1.02x [..]"     in a "ratio" column: the first value column over the second (user_service.sh:
//                    user-service / baseline, blackholed / healthy).
//
//   import { parseTables, ratioCharts } from './bench-text.mjs';
//   for (const c of ratioCharts(parseTables(text))) console.log(c.figure, c.bars);  // [{ target, ratio }]

// Cells of a line: [{ text, at }], split at runs of two or more spaces.
function cells(line) {
  const out = [];
  const re = /\S+(?: \S+)*/g;
  let m;
  while ((m = re.exec(line))) out.push({ text: m[0], at: m.index });
  return out;
}

export function parseTables(text) {
  const tables = [];
  let table = null;
  for (const line of text.split('\n')) {
    if (!line.trim()) {
      table = null;
      continue;
    }
    const cs = cells(line);
    if (cs[0]?.text === 'figure' && cs[0].at === 0 && cs.length >= 3) {
      table = { columns: cs.map((c) => c.text), starts: cs.map((c) => c.at), rows: [] };
      tables.push(table);
      continue;
    }
    if (!table || /^[-=\s]+$/.test(line)) continue;
    // The first cell is the figure (an indented one is a sub-row). A full row fills the columns in
    // order; in one with empty cells, each goes to the column nearest to where it starts, to the right
    // of the previous cell's.
    const row = new Array(table.columns.length).fill('');
    row[0] = cs[0].text;
    let col = 0;
    for (const c of cs.slice(1)) {
      if (cs.length === table.columns.length) {
        row[++col] = c.text;
        continue;
      }
      let best = -1;
      for (let k = col + 1; k < table.columns.length; k++) {
        if (best < 0 || Math.abs(table.starts[k] - c.at) < Math.abs(table.starts[best] - c.at)) best = k;
      }
      if (best < 0) break;
      row[best] = c.text;
      col = best;
    }
    table.rows.push(row);
  }
  return tables;
}

const NOT_A_TARGET = new Set(['figure', 'target', 'verdict', 'ratio']);
const isValue = (cell) => cell !== '' && cell !== '-' && /\d/.test(cell);

// One chart per row that states ratios: { figure, baseline, bars: [{ target, ratio }] } with the
// baseline's own bar at 1.
export function ratioCharts(tables) {
  const charts = [];
  for (const t of tables) {
    const ratioCol = t.columns.indexOf('ratio');
    for (const row of t.rows) {
      const bars = [];
      let baseline = null;
      if (ratioCol > 0) {
        const m = /^(-?\d+(?:\.\d+)?)x/.exec(row[ratioCol]);
        if (!m || ratioCol < 3) continue;
        baseline = t.columns[2];
        bars.push({ target: t.columns[1], ratio: Number(m[1]) }, { target: baseline, ratio: 1 });
      } else {
        for (let k = 1; k < t.columns.length; k++) {
          if (NOT_A_TARGET.has(t.columns[k])) continue;
          const m = /\((-?\d+(?:\.\d+)?)x\)/.exec(row[k]);
          if (m) bars.push({ target: t.columns[k], ratio: Number(m[1]) });
          else if (isValue(row[k]) && baseline === null) baseline = t.columns[k];
        }
        if (!bars.length || baseline === null) continue;
        bars.unshift({ target: baseline, ratio: 1 });
      }
      charts.push({ figure: row[0], baseline, bars });
    }
  }
  return charts;
}
