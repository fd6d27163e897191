// Server scale: one netlane server process and client processes with many connections each, 30 Hz x 100 B
// unreliable both ways. Driven over stdin/stdout by main.ts: each command line gets one `REPLY <json>` line.
//   node --expose-gc dist/bench/suite/scale.js server HOST        prints READY <port>
//   node dist/bench/suite/scale.js client HOST PORT COUNT         prints READY once COUNT are connected
// Commands: MEM (live memory: after a full GC and the sweeping of freed buffers), GO (start the 30 Hz traffic), MARK (start measuring CPU and ages),
// REPORT (CPU % since MARK, the whole process's and its main thread's, ages of the messages received since MARK, datagrams per second each way over the
// connections' last status interval).
import { createInterface } from 'node:readline';
import { cpuUsage, memoryUsage } from 'node:process';
import { Kind, mainThread, message, nowUs, quantile, timeOf, view, type Link } from './common.js';
import { contender } from './contenders.js';

const HZ = 30;
const SIZE = 100;

class Traffic {
  ages: number[] = [];
  received = 0;
  #cpu = cpuUsage();
  #main = mainThread().cpu;
  #markUs = nowUs();
  #timer: ReturnType<typeof setInterval> | undefined;
  readonly links = new Set<Link>();

  add(link: Link): void {
    this.links.add(link);
    link.onMessage = (d) => {
      const b = view(d);
      if (b[0] !== Kind.Position) return;
      this.received++;
      this.ages.push(nowUs() - timeOf(b));
    };
  }

  go(): void {
    if (this.#timer) return;
    let seq = 0;
    this.#timer = setInterval(() => {
      const t = nowUs();
      seq++;
      for (const l of this.links) {
        l.send(message(SIZE, Kind.Position, 'unreliable', 0, seq, t), 'unreliable');
        l.flush();
      }
    }, 1000 / HZ);
  }

  mark(): void {
    this.ages = [];
    this.received = 0;
    this.#cpu = cpuUsage();
    this.#main = mainThread().cpu;
    this.#markUs = nowUs();
  }

  report(): Record<string, number> {
    const cpu = cpuUsage(this.#cpu);
    const main = mainThread().cpu - this.#main;
    const secs = (nowUs() - this.#markUs) / 1e6;
    let packetsOut = 0;
    let packetsIn = 0;
    for (const l of this.links) {
      const r = l.packetRates?.();
      packetsOut += r?.out ?? 0;
      packetsIn += r?.in ?? 0;
    }
    this.ages.sort((a, b) => a - b);
    return {
      cpuPct: ((cpu.user + cpu.system) / 1e6 / secs) * 100,
      // The main thread alone (the rest is V8's helper threads: compilers, GC), 0 where Linux's schedstat is missing.
      mainCpuPct: (main / 1e6 / secs) * 100,
      received: this.received,
      perSec: this.received / secs,
      p50: quantile(this.ages, 0.5),
      p99: quantile(this.ages, 0.99),
      p999: quantile(this.ages, 0.999),
      connections: this.links.size,
      packetsOutPerSec: packetsOut,
      packetsInPerSec: packetsIn,
    };
  }
}

/**
 * Live memory: a full GC, then a pause for V8 to finish sweeping freed ArrayBuffers (until it has, their
 * bytes still count as `external`: right after 1,000 handshakes that was 1-3 KiB per connection of
 * dead buffers), then another full GC.
 */
async function memory(): Promise<Record<string, number>> {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  await new Promise((r) => setTimeout(r, 500));
  gc?.();
  const m = memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers };
}

function commands(t: Traffic): void {
  createInterface({ input: process.stdin }).on('line', async (cmd) => {
    let r: object = {};
    if (cmd === 'MEM') r = await memory();
    else if (cmd === 'GO') t.go();
    else if (cmd === 'MARK') t.mark();
    else if (cmd === 'REPORT') r = t.report();
    process.stdout.write(`REPLY ${JSON.stringify(r)}\n`);
  });
  process.stdin.on('end', () => process.exit(0));
}

const [role, host, port, count] = process.argv.slice(2);
const netlane = contender('netlane');
const traffic = new Traffic();
if (role === 'server' && host) {
  const s = await netlane.serve(host, (l) => traffic.add(l));
  commands(traffic);
  process.stdout.write(`READY ${s.port}\n`);
} else if (role === 'client' && host && port && count) {
  const n = Number(count);
  let next = 0;
  // 32 handshakes at a time.
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < n) {
        next++;
        traffic.add(await netlane.connect(host, Number(port)));
      }
    }),
  );
  commands(traffic);
  process.stdout.write(`READY ${traffic.links.size}\n`);
} else {
  console.error('usage: scale.js server HOST | client HOST PORT COUNT');
  process.exit(2);
}
