// The heap of the scale benchmark's server by what holds it: `npm run build`, then
//   node scripts/heap-breakdown.mjs [connections=1000] [depth=2]
// starts dist/bench/suite/scale.js as server (with heap snapshots on SIGUSR2) and two client processes,
// takes a snapshot before the connections and one 0.5 s after the last connect (as the benchmark's MEM),
// and prints the self size per class that the connections added, and the retained size (dominator tree)
// under each `Connection`, both per connection. The snapshots go to a temporary directory, removed at the end.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, URL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

function load(path) {
  const j = JSON.parse(readFileSync(path, 'utf8'));
  const m = j.snapshot.meta;
  const nf = m.node_fields.length;
  const ef = m.edge_fields.length;
  const nodeTypes = m.node_fields.indexOf('type');
  const typeNames = m.node_types[0];
  const edgeTypeNames = m.edge_types[0];
  const N = j.nodes.length / nf;
  const s = j.strings;
  const nodes = j.nodes;
  const edges = j.edges;
  const firstEdge = new Uint32Array(N + 1);
  for (let i = 0, e = 0; i < N; i++) {
    firstEdge[i] = e;
    e += nodes[i * nf + 4] * ef;
  }
  firstEdge[N] = edges.length;
  const type = (i) => typeNames[nodes[i * nf + nodeTypes]];
  const name = (i) => s[nodes[i * nf + 1]];
  const self = (i) => nodes[i * nf + 3];
  const cls = (i) => {
    const t = type(i);
    if (t === 'object' || t === 'native') return name(i);
    if (t === 'closure') return `closure ${name(i)}`;
    return `(${t})`;
  };
  return { N, nf, ef, nodes, edges, firstEdge, s, type, name, self, cls, edgeTypeNames };
}

function byClass(h) {
  const m = new Map();
  for (let i = 0; i < h.N; i++) {
    const c = h.cls(i);
    const v = m.get(c) ?? [0, 0];
    v[0] += h.self(i);
    v[1]++;
    m.set(c, v);
  }
  return m;
}

function dominators(h) {
  const { N, ef, edges, firstEdge, edgeTypeNames, nf } = h;
  // postorder DFS from root 0, ignoring weak edges
  const post = new Int32Array(N).fill(-1);
  const order = new Int32Array(N);
  let cnt = 0;
  const stack = new Int32Array(N);
  const it = new Uint32Array(N);
  const seen = new Uint8Array(N);
  let sp = 0;
  stack[sp++] = 0;
  seen[0] = 1;
  it[0] = firstEdge[0];
  const ok = (e) => edgeTypeNames[edges[e]] !== 'weak' && edgeTypeNames[edges[e]] !== 'shortcut';
  while (sp > 0) {
    const v = stack[sp - 1];
    let pushed = false;
    while (it[v] < firstEdge[v + 1]) {
      const e = it[v];
      it[v] += ef;
      if (!ok(e)) continue;
      const w = edges[e + 2] / nf;
      if (!seen[w]) {
        seen[w] = 1;
        it[w] = firstEdge[w];
        stack[sp++] = w;
        pushed = true;
        break;
      }
    }
    if (!pushed) {
      sp--;
      post[v] = cnt;
      order[cnt++] = v;
    }
  }
  // predecessors
  const predCount = new Uint32Array(N + 1);
  for (let v = 0; v < N; v++) {
    if (!seen[v]) continue;
    for (let e = firstEdge[v]; e < firstEdge[v + 1]; e += ef) if (ok(e)) predCount[edges[e + 2] / nf]++;
  }
  const predStart = new Uint32Array(N + 1);
  for (let i = 0; i < N; i++) predStart[i + 1] = predStart[i] + predCount[i];
  const preds = new Int32Array(predStart[N]);
  const fill = predStart.slice();
  for (let v = 0; v < N; v++) {
    if (!seen[v]) continue;
    for (let e = firstEdge[v]; e < firstEdge[v + 1]; e += ef) if (ok(e)) preds[fill[edges[e + 2] / nf]++] = v;
  }
  const idom = new Int32Array(N).fill(-1);
  idom[0] = 0;
  let changed = true;
  while (changed) {
    changed = false;
    for (let k = cnt - 1; k >= 0; k--) {
      const b = order[k];
      if (b === 0) continue;
      let nd = -1;
      for (let p = predStart[b]; p < predStart[b + 1]; p++) {
        const q = preds[p];
        if (idom[q] === -1) continue;
        if (nd === -1) nd = q;
        else {
          let f1 = q, f2 = nd;
          while (f1 !== f2) {
            while (post[f1] < post[f2]) f1 = idom[f1];
            while (post[f2] < post[f1]) f2 = idom[f2];
          }
          nd = f1;
        }
      }
      if (nd !== -1 && idom[b] !== nd) {
        idom[b] = nd;
        changed = true;
      }
    }
  }
  const retained = new Float64Array(N);
  for (let k = 0; k < cnt; k++) {
    const v = order[k];
    retained[v] += h.self(v);
    if (v !== 0 && idom[v] >= 0) retained[idom[v]] += retained[v];
  }
  return { idom, retained, seen };
}

const [nArg = '1000', depthArg = '2'] = process.argv.slice(2);
const N = Number(nArg);
const SCALE = fileURLToPath(new URL('../dist/bench/suite/scale.js', import.meta.url));
const out = mkdtempSync(join(tmpdir(), 'netlane-heap-'));
function lineReader(p) {
  const q = [];
  const w = [];
  createInterface({ input: p.stdout }).on('line', (l) => (w.length ? w.shift()(l) : q.push(l)));
  return () => (q.length ? Promise.resolve(q.shift()) : new Promise((r) => w.push(r)));
}
const srv = spawn(process.execPath, ['--expose-gc', '--heapsnapshot-signal=SIGUSR2', SCALE, 'server', '127.0.0.1'], { stdio: ['pipe', 'pipe', 'inherit'], cwd: out });
const next = lineReader(srv);
const port = (await next()).split(' ')[1];
const ask = async (cmd) => {
  srv.stdin.write(`${cmd}\n`);
  return JSON.parse((await next()).slice('REPLY '.length));
};
async function snapshot() {
  const before = new Set(readdirSync(out));
  srv.kill('SIGUSR2');
  for (;;) {
    await sleep(500);
    const f = readdirSync(out).find((x) => !before.has(x) && x.endsWith('.heapsnapshot'));
    if (!f) continue;
    const size = statSync(join(out, f)).size;
    await sleep(1500);
    if (size > 0 && statSync(join(out, f)).size === size) return join(out, f);
  }
}
let clients = [];
try {
  await ask('MEM');
  const basePath = await snapshot();
  const m0 = await ask('MEM');
  clients = [0, 1].map(() => spawn(process.execPath, [SCALE, 'client', '127.0.0.1', port, String(N / 2)], { stdio: ['pipe', 'pipe', 'inherit'] }));
  await Promise.all(clients.map((c) => lineReader(c)()));
  await sleep(500);
  const m1 = await ask('MEM');
  const fullPath = await snapshot();
  console.log(`live memory per connection: heap ${((m1.heapUsed - m0.heapUsed) / N).toFixed(0)} B, external ${((m1.external - m0.external) / N).toFixed(0)} B`);
  report(basePath, fullPath, N, Number(depthArg));
} finally {
  for (const c of clients) c.kill('SIGTERM');
  srv.kill('SIGTERM');
  rmSync(out, { recursive: true, force: true });
}

function report(basePath, fullPath, n, depth) {
  const base = byClass(load(basePath));
  const h = load(fullPath);
  const full = byClass(h);
  const rows = [];
  for (const [c, v] of full) {
    const b = base.get(c) ?? [0, 0];
    rows.push([c, (v[0] - b[0]) / n, (v[1] - b[1]) / n]);
  }
  rows.sort((a, b) => b[1] - a[1]);
  let tot = 0;
  for (const r of rows) tot += r[1];
  console.log(`== self size diff by class, per connection (total ${tot.toFixed(0)} B)`);
  for (const r of rows.slice(0, 45)) console.log(`${r[1].toFixed(1).padStart(8)} B ${r[2].toFixed(2).padStart(6)} objs  ${r[0]}`);
  
  const { idom, retained } = dominators(h);
  // children lists
  const kids = new Map();
  for (let v = 1; v < h.N; v++) {
    const d = idom[v];
    if (d < 0 || d === v) continue;
    let a = kids.get(d);
    if (!a) kids.set(d, (a = []));
    a.push(v);
  }
  const edgeName = (from, to) => {
    for (let e = h.firstEdge[from]; e < h.firstEdge[from + 1]; e += h.ef) {
      if (h.edges[e + 2] / h.nf === to) {
        const t = h.edgeTypeNames[h.edges[e]];
        const nm = t === 'element' || t === 'hidden' ? `[${h.edges[e + 1]}]` : h.s[h.edges[e + 1]];
        return nm;
      }
    }
    return '?';
  };
  const roots = [];
  for (let i = 0; i < h.N; i++) if (h.type(i) === 'object' && h.name(i) === 'Connection') roots.push(i);
  const agg = new Map();
  function walk(v, path, d) {
    const key = path;
    const a = agg.get(key) ?? [0, 0];
    a[0] += retained[v];
    a[1]++;
    agg.set(key, a);
    if (d >= depth) return;
    for (const k of kids.get(v) ?? []) walk(k, `${path} / ${edgeName(v, k)}:${h.cls(k)}`, d + 1);
  }
  for (const r of roots) walk(r, 'Connection', 0);
  console.log(`\n== retained under Connection (${roots.length} instances), per instance`);
  const sorted = [...agg].sort((a, b) => a[0].localeCompare(b[0]));
  for (const [k, v] of sorted) {
    const per = v[0] / roots.length;
    if (per < 16) continue;
    const ind = '  '.repeat(k.split(' / ').length - 1);
    console.log(`${per.toFixed(0).padStart(7)} B  ${ind}${k.split(' / ').pop()}${v[1] !== roots.length ? ` (x${(v[1] / roots.length).toFixed(2)})` : ''}`);
  }
}
