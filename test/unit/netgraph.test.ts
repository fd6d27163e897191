// The net graph renderer (src/cli/netgraph.ts): what `netlane top` and the demo's --watch show for a stats
// snapshot, and how frames are redrawn in place on a terminal and written plainly to a pipe.
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { FrameWriter, GRAPH_SECONDS, NetGraphHistory, bytes, renderNetGraph, sparkline, type StatsConnection, type StatsSnapshot } from '../../src/cli/netgraph.js';

const T0 = Date.UTC(2026, 0, 2, 3, 4, 5);

function conn(over: Partial<StatsConnection> = {}): StatsConnection {
  return {
    id: 'c1',
    name: 'player-1',
    pingMs: 42,
    qualityLocal: 0.95,
    qualityRemote: 0.9,
    outBytesPerSec: 12_800,
    inBytesPerSec: 600,
    outPacketsPerSec: 40,
    inPacketsPerSec: 20,
    queuedBytesPerLane: [0, 2048],
    state: 'Connected',
    ...over,
  };
}

function snap(unixMs: number, connections: StatsConnection[], totals: Record<string, unknown> = {}): StatsSnapshot {
  // Totals as a parsed /stats.json body may hold them: numbers, and anything else a source added (left out).
  return { kind: 'server', unixMs, connections, totals: totals as Record<string, number> };
}

/** The rendered lines of one snapshot added to `h`. */
function render(h: NetGraphHistory, s: StatsSnapshot, width?: number): string[] {
  h.add(s);
  return renderNetGraph(s, h, width === undefined ? {} : { width });
}

const graph = (lines: readonly string[], which: 'ping' | 'rate'): string => {
  const l = lines.find((x) => x.trimStart().startsWith(`${which} |`));
  assert.ok(l, `a ${which} sparkline line`);
  return /\|(.*)\|/u.exec(l)?.[1] ?? '';
};

describe('net graph', () => {
  it('shows per connection its ping, quality local/remote, loss, rates, queued bytes per lane, and the numeric totals', () => {
    const lines = render(new NetGraphHistory(), snap(T0, [conn()], { connections: 1, forwardedPackets: 1234, region: 'eu' }));
    const text = lines.join('\n');
    assert.match(lines[0] ?? '', /^netlane server · 1 connection · 03:04:05 UTC$/);
    assert.match(text, /player-1 +\[Connected\]/);
    assert.match(text, /ping +42 ms +quality 95\.0% local \/ 90\.0% remote +loss 5\.0%/);
    assert.match(text, /in +600 B\/s +20 pkt\/s +out +12\.5 KB\/s +40 pkt\/s/);
    assert.match(text, /queued per lane: 0:0 B 1:2\.0 KB/);
    assert.match(text, /totals: connections 1 {2}forwardedPackets 1234$/m, 'numbers only: the region label is left out');
  });

  it('says unknown rather than inventing a figure before the first ping and quality sample', () => {
    const text = render(new NetGraphHistory(), snap(T0, [conn({ pingMs: -1, qualityLocal: -1, qualityRemote: -1 })])).join('\n');
    assert.match(text, /ping +\? ms +quality +\? +local \/ +\? +remote +loss +\?/);
    assert.doesNotMatch(text, /-1 ms|-100\.0%|200\.0%/);
  });

  it('says so when there are no connections', () => {
    const lines = render(new NetGraphHistory(), { kind: 'relay', unixMs: T0, connections: [], totals: {} });
    assert.deepEqual(lines, ['netlane relay · 0 connections · 03:04:05 UTC', '  (no connections)']);
  });

  it('draws 60-second sparklines of ping and rate: one column a second, newest on the right, seconds without a sample blank', () => {
    const h = new NetGraphHistory();
    let lines: string[] = [];
    // Ping 10, 20, ... 100 ms over ten seconds, then a gap of 5 s, then one more sample of 100 ms.
    for (let i = 0; i < 10; i++) lines = render(h, snap(T0 + i * 1000, [conn({ pingMs: (i + 1) * 10, inBytesPerSec: 0, outBytesPerSec: 1000 })]));
    const ping = [...graph(lines, 'ping')];
    assert.equal(ping.length, GRAPH_SECONDS);
    assert.equal(ping.slice(0, GRAPH_SECONDS - 10).join('').trim(), '', 'no samples before the first second');
    assert.equal(ping.at(-1), '█', 'the newest (and largest) sample is a full bar at the right');
    assert.equal(ping.at(-10), '▂', 'the oldest, a tenth of the largest, near the bottom');
    assert.equal(new Set(graph(lines, 'rate').trim()).size, 1, 'a steady rate is a flat line');
    assert.match(lines.join('\n'), /max 100 ms/);
    lines = render(h, snap(T0 + 15_000, [conn({ pingMs: 100 })]));
    const later = [...graph(lines, 'ping')];
    assert.equal(later.slice(-5, -1).join(''), '    ', 'the four seconds without a snapshot are blank');
    assert.equal(later.at(-1), '█');
  });

  it('forgets samples older than 60 seconds, and a second snapshot in the same second replaces the sample', () => {
    const h = new NetGraphHistory();
    render(h, snap(T0, [conn({ pingMs: 500 })]));
    let lines = render(h, snap(T0 + 30_000, [conn({ pingMs: 10 })]));
    assert.match(lines.join('\n'), /max 500 ms/, 'the old spike is still in the window');
    lines = render(h, snap(T0 + 60_000, [conn({ pingMs: 10 })]));
    assert.match(lines.join('\n'), /max 10 ms/, 'the spike left the window after 60 s');
    lines = render(h, snap(T0 + 60_500, [conn({ pingMs: 20 })]));
    assert.match(lines.join('\n'), /max 20 ms/);
    assert.equal([...graph(lines, 'ping')].filter((c) => c !== ' ').length, 2, 'two samples: 30 s and 60 s (replaced)');
  });

  it('keeps each connection its own history, by id', () => {
    const h = new NetGraphHistory();
    render(h, snap(T0, [conn({ id: 'a', name: 'a', pingMs: 300 }), conn({ id: 'b', name: 'b', pingMs: 5 })]));
    const text = render(h, snap(T0 + 1000, [conn({ id: 'a', name: 'a', pingMs: 300 }), conn({ id: 'b', name: 'b', pingMs: 5 })])).join('\n');
    assert.match(text, /max 300 ms[\s\S]*max 5 ms/);
  });

  it('cuts lines to the terminal width', () => {
    const lines = render(new NetGraphHistory(), snap(T0, [conn()]), 40);
    assert.ok(lines.every((l) => [...l].length <= 40));
    assert.ok(lines.some((l) => [...l].length === 40));
  });

  it('formats sizes and scales sparklines', () => {
    assert.deepEqual([bytes(812), bytes(12.3 * 1024), bytes(4.05 * 1024 * 1024)], ['812 B', '12.3 KB', '4.05 MB']);
    assert.equal(sparkline([0, 1, 2, 3, 4, 5, 6, 7]), '▁▂▃▄▅▆▇█');
    assert.equal(sparkline([0, 0, Number.NaN, -1]), '▁▁  ');
  });
});

describe('frames', () => {
  it('on a terminal, redraws each frame over the previous one and keeps event lines above it', () => {
    const w = new FrameWriter(true);
    assert.equal(w.frame(['a', 'b']), '\r\x1b[Ja\nb\n', 'the first frame is written where the cursor is');
    assert.equal(w.frame(['c']), '\x1b[2A\r\x1b[Jc\n', 'the next one moves up over the two lines and clears');
    assert.equal(w.above('event'), '\x1b[1A\r\x1b[Jevent\nc\n', 'an event goes above and the frame is drawn again under it');
    assert.equal(w.frame(['d']), '\x1b[1A\r\x1b[Jd\n');
  });

  it('piped, writes plain lines: no escape codes', () => {
    const w = new FrameWriter(false);
    const out = w.frame(['a', 'b']) + w.above('event') + w.frame(['c']);
    assert.equal(out, 'a\nb\n\nevent\nc\n\n');
    assert.ok(!out.includes('\x1b'), 'no escape character');
  });
});
