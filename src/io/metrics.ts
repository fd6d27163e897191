// The metrics endpoint: a relay's and a NetworkingSockets' counters in the Prometheus text format, a health check
// and a JSON snapshot for a live net graph, over node:http on a local port (docs/DEPLOY.md "Metrics and health").
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { ConnectionState } from '../core/types.js';
import { RelayServer } from './relay-server.js';

/** One connection of a {@link StatsSnapshot}: what a net graph draws. -1 where the source does not know the figure. */
export interface StatsConnection {
  /** The connection's handle (a server), or the session id in hex (a relay). */
  readonly id: string;
  /** The connection's name, or the peer's identity (never an address); a relay session's ticket user. '' when none. */
  readonly name: string;
  readonly pingMs: number;
  /** Share of the peer's packets that arrived (0..1), -1 unknown. */
  readonly qualityLocal: number;
  /** The same as the peer measures ours, -1 unknown. */
  readonly qualityRemote: number;
  readonly outBytesPerSec: number;
  readonly inBytesPerSec: number;
  readonly outPacketsPerSec: number;
  readonly inPacketsPerSec: number;
  /** Bytes waiting to be sent, reliable and unreliable, per lane. */
  readonly queuedBytesPerLane: readonly number[];
  /** A server's ConnectionState name (`Connected`, ...); a relay session's `linked` (it carries a link) or `open`. */
  readonly state: string;
}

/** `GET /stats.json`. */
export interface StatsSnapshot {
  readonly kind: 'relay' | 'server';
  /** Wall clock of the snapshot, ms since 1970. */
  readonly unixMs: number;
  readonly connections: readonly StatsConnection[];
  /** The sources' counters and gauges by name (free-form; a rate is the difference of two snapshots). */
  readonly totals: Readonly<Record<string, number>>;
}

/** One sample in the Prometheus text format. Samples of one name form a family (one `# HELP` and `# TYPE`). */
export interface MetricSample {
  /** `netlane_*`; a counter's ends in `_total`. */
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge';
  readonly value: number;
  readonly labels?: Readonly<Record<string, string>>;
}

/** What the endpoint reads: a {@link relayMetrics} or {@link socketsMetrics} source, or one of your own. */
export interface MetricsSource {
  readonly kind: 'relay' | 'server';
  /** While true, `GET /health` answers 503. */
  readonly draining: boolean;
  /** Appends the source's samples to `out`. */
  samples(out: MetricSample[]): void;
  /** Appends one entry per connection (a relay: per session) to `out`. */
  connections(out: StatsConnection[]): void;
  /** Adds the source's counters and gauges to `out`. */
  totals(out: Record<string, number>): void;
}

/**
 * The part of a NetworkingSockets that {@link socketsMetrics} reads (src/io does not import the facades; a
 * NetworkingSockets is one of these as it is).
 */
export interface MetricsSockets {
  listConnections(): number[];
  getConnectionLaneCount(conn: number): number;
  getConnectionRealTimeStatus(
    conn: number,
    numLanes: number,
  ): {
    readonly status: { readonly state: number; readonly ping: number; readonly connectionQualityLocal: number; readonly connectionQualityRemote: number; readonly outBytesPerSecond: number; readonly inBytesPerSecond: number; readonly outPacketsPerSecond: number; readonly inPacketsPerSecond: number } | null;
    readonly lanes: readonly { readonly pendingReliable: number; readonly pendingUnreliable: number }[];
  };
  getConnectionInfo(conn: number): { readonly identityRemote: string } | null;
  getConnectionName(conn: number): string | null;
  getSocketStats(handle: number): object | null;
}

/** Options of {@link startMetricsServer}. */
export interface MetricsServerOptions {
  /** IP to listen on. Default 127.0.0.1: the endpoint says how many connections there are and who; keep it private. */
  readonly host?: string;
  /** TCP port; 0 picks a free one. Default 9464. */
  readonly port?: number;
  /** What to report: a RelayServer, a NetworkingSockets (all its connections), or any {@link MetricsSource}. */
  readonly sources: readonly (RelayServer | MetricsSockets | MetricsSource)[];
  /** Keep the process alive while the endpoint listens. Default false. */
  readonly keepProcessAlive?: boolean;
}

/** A running endpoint: `GET /metrics`, `GET /health`, `GET /stats.json`. */
export interface MetricsServer {
  readonly host: string;
  readonly port: number;
  /** Set to make `GET /health` answer 503 (a server going down); a draining relay source does it by itself. */
  draining: boolean;
  /** Every source's samples, as `GET /metrics` serves them. */
  metrics(): string;
  /** What `GET /stats.json` serves. */
  snapshot(): StatsSnapshot;
  /** Stops listening and closes open HTTP connections. */
  close(): Promise<void>;
}

/** The Prometheus text exposition format (version 0.0.4) of `samples`, a family's samples together. */
export function formatPrometheus(samples: readonly MetricSample[]): string {
  const families = new Map<string, MetricSample[]>();
  for (const s of samples) {
    const f = families.get(s.name);
    if (f) f.push(s);
    else families.set(s.name, [s]);
  }
  let out = '';
  for (const [name, f] of families) {
    const first = f[0] as MetricSample;
    out += `# HELP ${name} ${first.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}\n# TYPE ${name} ${first.type}\n`;
    for (const s of f) out += `${name}${labelText(s.labels)} ${numberText(s.value)}\n`;
  }
  return out;
}

function labelText(labels: Readonly<Record<string, string>> | undefined): string {
  if (!labels) return '';
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

function numberText(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(v);
}

/** `forwardedPackets` as `forwarded_packets`. */
function snake(camel: string): string {
  return camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** Help texts of the relay counters an operator watches first; the others name their RelayStats field. */
const RELAY_HELP: Readonly<Record<string, string>> = {
  datagramsIn: 'Datagrams the relay received.',
  bytesIn: 'Bytes the relay received.',
  datagramsOut: 'Datagrams the relay sent.',
  bytesOut: 'Bytes the relay sent.',
  forwardedPackets: 'End-to-end datagrams forwarded between linked sessions.',
  forwardedBytes: 'Bytes of end-to-end datagrams forwarded (ciphertext the relay cannot read).',
  sessionsOpened: 'Relay sessions opened.',
  sessionsClosed: 'Relay sessions closed.',
  ticketRefused: 'Session requests refused for their ticket.',
  ticketRefusedBy: 'Session requests refused for their ticket, by reason.',
  cookieRefused: 'Session requests dropped for a bad or stale cookie.',
  rateLimited: "Data dropped by a session's rate cap.",
  malformed: 'Datagrams that did not parse.',
  unauthenticated: 'Sealed datagrams that did not open (forged or corrupted).',
  dirEntries: 'Identities in the directory now.',
  fleetStoreUp: "1 while the fleet store's last answer was a success.",
};
/** RelayStats fields that are levels, not counts. */
const RELAY_GAUGES = new Set(['dirEntries', 'fleetStoreUp']);

/** A session's forwarding counters when last sampled, and the rates over the interval before. */
interface SessionRates {
  atMs: number;
  upPackets: number;
  upBytes: number;
  downPackets: number;
  downBytes: number;
  /** Per second, from the session's side: out is what it sent (up), in what it was sent (down); -1 until measured. */
  outPackets: number;
  outBytes: number;
  inPackets: number;
  inBytes: number;
}

/** Rates are taken over at least this long, however often the endpoint is read (two scrapers do not halve it). */
const RATE_INTERVAL_MS = 1000;

/** The source of a {@link RelayServer}: its node's counters, sessions and links, admission and drain state. */
export function relayMetrics(relay: RelayServer): MetricsSource {
  const rates = new Map<string, SessionRates>();
  return {
    kind: 'relay',
    get draining() {
      return relay.draining;
    },
    samples(out) {
      for (const [key, v] of Object.entries(relay.node.stats) as [string, number | Record<string, number>][]) {
        const help = RELAY_HELP[key] ?? `The relay's ${key} (RelayStats, docs/RELAY.md).`;
        if (typeof v === 'number') {
          const gauge = RELAY_GAUGES.has(key);
          out.push({ name: `netlane_relay_${snake(key)}${gauge ? '' : '_total'}`, help, type: gauge ? 'gauge' : 'counter', value: v });
        } else for (const [reason, n] of Object.entries(v)) out.push({ name: `netlane_relay_${snake(key)}_total`, help, type: 'counter', value: n, labels: { reason } });
      }
      out.push(
        { name: 'netlane_relay_sessions', help: 'Relay sessions held now.', type: 'gauge', value: relay.node.sessionCount },
        { name: 'netlane_relay_links', help: 'Links between sessions now.', type: 'gauge', value: relay.node.linkCount },
        { name: 'netlane_relay_draining', help: '1 while the relay drains (refuses new sessions).', type: 'gauge', value: relay.draining ? 1 : 0 },
        { name: 'netlane_relay_admission_queued', help: 'Pings and session requests waiting for the next pass.', type: 'gauge', value: relay.admission.stats.queued },
        { name: 'netlane_relay_admission_shed_total', help: 'Pings and session requests dropped unprocessed under load.', type: 'counter', value: relay.admission.stats.shed },
        { name: 'netlane_relay_send_errors_total', help: 'Sends the kernel refused.', type: 'counter', value: relay.sendErrors },
        { name: 'netlane_relay_fleet_subscribe_failures_total', help: "Subscriptions to the fleet's channels the store refused.", type: 'counter', value: relay.fleetSubscribeFailures },
      );
    },
    connections(out) {
      const nowMs = performance.now();
      const seen = new Set<string>();
      for (const s of relay.node.sessions()) {
        seen.add(s.id);
        let r = rates.get(s.id);
        if (!r) {
          r = { atMs: nowMs, upPackets: s.upPackets, upBytes: s.upBytes, downPackets: s.downPackets, downBytes: s.downBytes, outPackets: -1, outBytes: -1, inPackets: -1, inBytes: -1 };
          rates.set(s.id, r);
        } else if (nowMs - r.atMs >= RATE_INTERVAL_MS) {
          const perS = 1000 / (nowMs - r.atMs);
          r.outPackets = (s.upPackets - r.upPackets) * perS;
          r.outBytes = (s.upBytes - r.upBytes) * perS;
          r.inPackets = (s.downPackets - r.downPackets) * perS;
          r.inBytes = (s.downBytes - r.downBytes) * perS;
          Object.assign(r, { atMs: nowMs, upPackets: s.upPackets, upBytes: s.upBytes, downPackets: s.downPackets, downBytes: s.downBytes });
        }
        // The relay cannot read the end-to-end packets: no ping, quality or lanes; the rates are what it forwards.
        out.push({ id: s.id, name: s.user ?? '', pingMs: -1, qualityLocal: -1, qualityRemote: -1, outBytesPerSec: r.outBytes, inBytesPerSec: r.inBytes, outPacketsPerSec: r.outPackets, inPacketsPerSec: r.inPackets, queuedBytesPerLane: [], state: s.links > 0 ? 'linked' : 'open' });
      }
      for (const id of rates.keys()) if (!seen.has(id)) rates.delete(id);
    },
    totals(out) {
      for (const [key, v] of Object.entries(relay.node.stats) as [string, number | Record<string, number>][]) {
        if (typeof v === 'number') add(out, key, v);
        else for (const [sub, n] of Object.entries(v)) add(out, `${key}.${sub}`, n);
      }
      add(out, 'sessions', relay.node.sessionCount);
      add(out, 'links', relay.node.linkCount);
      add(out, 'admissionShed', relay.admission.stats.shed);
      add(out, 'sendErrors', relay.sendErrors);
      add(out, 'draining', relay.draining ? 1 : 0);
    },
  };
}

function add(out: Record<string, number>, key: string, v: number): void {
  out[key] = (out[key] ?? 0) + v;
}

const STATE_NAMES = new Map<number, string>(Object.entries(ConnectionState).map(([name, v]) => [v, name]));

/** Options of {@link socketsMetrics}. */
export interface SocketsMetricsOptions {
  /** Listen sockets (or connections) whose UDP socket's counters to export (`getSocketStats`), labelled by handle. */
  readonly sockets?: readonly number[];
}

/** The source of a {@link NetworkingSockets}: every connection it has (`listConnections`), and the counters of `options.sockets`. */
export function socketsMetrics(api: MetricsSockets, options: SocketsMetricsOptions = {}): MetricsSource {
  const sockets = options.sockets ?? [];
  const each = (fn: (c: StatsConnection) => void): void => {
    for (const h of api.listConnections()) {
      const lanes = Math.max(0, api.getConnectionLaneCount(h));
      const { status, lanes: laneStatus } = api.getConnectionRealTimeStatus(h, lanes);
      const info = api.getConnectionInfo(h);
      if (!status || !info) continue;
      // An `ip:` identity is the peer's address: not in a snapshot.
      const identity = info.identityRemote.startsWith('ip:') ? '' : info.identityRemote;
      fn({
        id: String(h),
        name: api.getConnectionName(h) || identity,
        pingMs: status.ping,
        qualityLocal: status.connectionQualityLocal,
        qualityRemote: status.connectionQualityRemote,
        outBytesPerSec: status.outBytesPerSecond,
        inBytesPerSec: status.inBytesPerSecond,
        outPacketsPerSec: status.outPacketsPerSecond,
        inPacketsPerSec: status.inPacketsPerSecond,
        queuedBytesPerLane: laneStatus.map((l) => l.pendingReliable + l.pendingUnreliable),
        state: STATE_NAMES.get(status.state) ?? String(status.state),
      });
    }
  };
  return {
    kind: 'server',
    draining: false,
    samples(out) {
      const byState = new Map<string, number>();
      const sum = { out: 0, in: 0, outP: 0, inP: 0, queued: 0 };
      each((c) => {
        byState.set(c.state, (byState.get(c.state) ?? 0) + 1);
        sum.out += c.outBytesPerSec;
        sum.in += c.inBytesPerSec;
        sum.outP += c.outPacketsPerSec;
        sum.inP += c.inPacketsPerSec;
        for (const q of c.queuedBytesPerLane) sum.queued += q;
      });
      for (const [state, n] of byState) out.push({ name: 'netlane_connections', help: 'Connections by state.', type: 'gauge', value: n, labels: { state } });
      out.push(
        { name: 'netlane_out_bytes_per_second', help: 'Bytes per second sent, over every connection.', type: 'gauge', value: sum.out },
        { name: 'netlane_in_bytes_per_second', help: 'Bytes per second received, over every connection.', type: 'gauge', value: sum.in },
        { name: 'netlane_out_packets_per_second', help: 'Packets per second sent, over every connection.', type: 'gauge', value: sum.outP },
        { name: 'netlane_in_packets_per_second', help: 'Packets per second received, over every connection.', type: 'gauge', value: sum.inP },
        { name: 'netlane_queued_bytes', help: 'Bytes waiting to be sent, over every connection and lane.', type: 'gauge', value: sum.queued },
      );
      for (const h of sockets) {
        const st = api.getSocketStats(h);
        if (!st) continue;
        for (const [key, v] of Object.entries(st) as [string, unknown][]) {
          if (typeof v === 'number') out.push({ name: `netlane_socket_${snake(key)}_total`, help: `The socket's ${key} (getSocketStats).`, type: 'counter', value: v, labels: { socket: String(h) } });
        }
      }
    },
    connections(out) {
      each((c) => out.push(c));
    },
    totals(out) {
      let n = 0;
      each((c) => {
        n++;
        add(out, 'outBytesPerSec', c.outBytesPerSec);
        add(out, 'inBytesPerSec', c.inBytesPerSec);
        add(out, 'outPacketsPerSec', c.outPacketsPerSec);
        add(out, 'inPacketsPerSec', c.inPacketsPerSec);
      });
      add(out, 'connections', n);
      for (const h of sockets) {
        const st = api.getSocketStats(h);
        if (st) for (const [key, v] of Object.entries(st) as [string, unknown][]) if (typeof v === 'number') add(out, key, v);
      }
    },
  };
}

function isSource(s: RelayServer | MetricsSockets | MetricsSource): s is MetricsSource {
  return 'samples' in s && 'totals' in s;
}

/**
 * Serves `GET /metrics` (Prometheus text format), `GET /health` (200 `{"status":"up",...}`, 503 while draining) and
 * `GET /stats.json` ({@link StatsSnapshot}) on `host:port` over node:http. Resolves once listening; rejects with the
 * listen error (EADDRINUSE ...). The endpoint keeps no timer: every figure is read when asked for.
 */
export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const sources = options.sources.map((s) => (s instanceof RelayServer ? relayMetrics(s) : isSource(s) ? s : socketsMetrics(s)));
  const kind = sources[0]?.kind ?? 'server';
  const startedAt = performance.now();
  const http: Server = createServer();
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen({ host, port: options.port ?? 9464 }, () => {
      http.off('error', reject);
      resolve();
    });
  });
  if (!(options.keepProcessAlive ?? false)) http.unref();
  const address = http.address() as AddressInfo;

  const server: MetricsServer = {
    host: address.address,
    port: address.port,
    draining: false,
    metrics() {
      const out: MetricSample[] = [{ name: 'netlane_up', help: 'The endpoint answers; 0 while draining.', type: 'gauge', value: isDraining() ? 0 : 1 }];
      sources.forEach((s, i) => {
        const from = out.length;
        s.samples(out);
        // Two sources of one kind would repeat a series: each is labelled with its place in `sources`.
        if (sources.length > 1) for (let k = from; k < out.length; k++) out[k] = { ...(out[k] as MetricSample), labels: { ...out[k]?.labels, source: String(i) } };
      });
      return formatPrometheus(out);
    },
    snapshot() {
      const connections: StatsConnection[] = [];
      const totals: Record<string, number> = {};
      for (const s of sources) {
        s.connections(connections);
        s.totals(totals);
      }
      return { kind, unixMs: Date.now(), connections, totals };
    },
    close() {
      return new Promise<void>((resolve) => {
        http.close(() => resolve());
        http.closeAllConnections();
      });
    },
  };
  const isDraining = (): boolean => server.draining || sources.some((s) => s.draining);

  http.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(res, 405, 'text/plain; charset=utf-8', 'GET or HEAD only\n', { allow: 'GET, HEAD' });
    switch (path) {
      case '/metrics':
        return reply(res, 200, 'text/plain; version=0.0.4; charset=utf-8', server.metrics());
      case '/health': {
        const draining = isDraining();
        const connections = server.snapshot().connections.length;
        const body = { status: draining ? 'draining' : 'up', kind, uptimeSeconds: Math.round((performance.now() - startedAt) / 1000), connections };
        return reply(res, draining ? 503 : 200, 'application/json', `${JSON.stringify(body)}\n`);
      }
      case '/stats.json':
        return reply(res, 200, 'application/json', `${JSON.stringify(server.snapshot())}\n`);
      default:
        return reply(res, 404, 'text/plain; charset=utf-8', 'not found: /metrics, /health, /stats.json\n');
    }
  });
  return server;
}

function reply(res: ServerResponse, status: number, type: string, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
