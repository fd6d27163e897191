#!/usr/bin/env node
// The `netlane` command: keys, certificates, relay tickets, the relay node, the demo, the live net graph (top).
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { NodeCryptoProvider } from '../crypto/node-provider.js';
import { signCertificate } from '../crypto/certificate.js';
import { parseIdentity } from '../crypto/identity.js';
import { decodeKeyFile, decodePublicKey, decodeRelayKeyFile, encodeCertificateFile, encodeKeyFile, encodeRelayKeyFile } from '../crypto/keyfile.js';
import type { KeyExchangePair, SigningKey } from '../crypto/provider.js';
import { NetlaneError } from '../util/errors.js';
import { RelayServer } from '../io/relay-server.js';
import { openRedisFleetStore, type FleetStore } from '../io/fleet-store.js';
import { startMetricsServer, type MetricsServer } from '../io/metrics.js';
import { signTicket, ticketKeyId } from '../relay/ticket.js';
import { CliError, ExitCode, readOptions, readTextFile, reportAndExit, systemMessage, usageError, type OptionSpecs, type Options } from './args.js';
import { DEMO_OPTIONS, DEMO_USAGE } from './demo-options.js';
import { TOP_USAGE, processOutput, top } from './top.js';
import { startWebPage, type GatewayUrl, type WebPage } from './web.js';

/** The options of each command (node:util parseArgs specs; `env` ones are read from NETLANE_* too). */
const OPTIONS = {
  keygen: { out: { type: 'string' }, force: { type: 'boolean' } },
  cert: { ca: { type: 'string' }, identity: { type: 'string' }, key: { type: 'string' }, 'public-key': { type: 'string' }, days: { type: 'string' }, address: { type: 'string', multiple: true }, out: { type: 'string' }, force: { type: 'boolean' } },
  ticket: { key: { type: 'string' }, user: { type: 'string' }, hours: { type: 'string' }, sessions: { type: 'string' }, kbps: { type: 'string' }, out: { type: 'string' }, force: { type: 'boolean' } },
  relay: Object.fromEntries(
    (
      [
        ['address', 'string'],
        ['port', 'string'],
        ['key', 'string'],
        ['ticket-key', 'string', true],
        ['revoke', 'string', true],
        ['open', 'boolean'],
        ['max-sessions', 'string'],
        ['idle-seconds', 'string'],
        ['drain-seconds', 'string'],
        ['status-seconds', 'string'],
        ['redis', 'string'],
        ['region', 'string'],
        ['advertise', 'string'],
        ['metrics', 'string'],
        ['ws', 'string'],
        ['webrtc', 'string'],
        ['web', 'string'],
      ] as const
    ).map(([name, type, multiple]) => [name, { type, env: true, ...(multiple ? { multiple } : {}) }]),
  ),
  demo: DEMO_OPTIONS,
  top: { url: { type: 'string' }, interval: { type: 'string' }, count: { type: 'string' }, plain: { type: 'boolean' } },
  version: {},
} satisfies Record<string, OptionSpecs>;

/** Each command's usage, printed by `netlane CMD --help` (and all of them by `netlane --help`). */
const COMMAND_USAGE = {
  keygen: `  netlane keygen [--out FILE [--force]]
      Makes an Ed25519 key (identity key, or an authority key). Prints it, or writes FILE (mode 0600).
      An existing FILE is kept (exit 4) unless --force.`,
  cert: `  netlane cert --ca CA_KEY_FILE --identity ID (--key KEY_FILE | --public-key BASE64)
               [--days N] [--address IP]... [--out FILE [--force]]
      Signs a certificate for a public key with the authority's key. ID: str:NAME, id:N, gen:HEX, ip:ADDR:PORT.
      Valid from now for N days (default 30, at most 3650); --address restricts it to those source IPs.`,
  ticket: `  netlane ticket --key TICKET_KEY_FILE --user NAME [--hours H] [--sessions N] [--kbps K] [--out FILE [--force]]
      Signs a relay ticket for NAME with the operator's ticket key: valid from now for H hours (default 6,
      at most 24), N sessions per relay (default 4), K kbit/s per session (default 8000). Prints base64url.`,
  relay: `  netlane relay [--address IP] [--port N] [--key FILE] [--ticket-key PUBLIC_KEY_OR_KEY_FILE]... [--revoke KEY_ID]...
                [--open] [--max-sessions N] [--idle-seconds S] [--drain-seconds S] [--status-seconds S]
                [--redis redis://HOST:PORT] [--region NAME] [--advertise IP] [--metrics IP:PORT] [--ws IP:PORT]
                [--webrtc IP:PORT] [--web IP:PORT]
      Runs a relay node on UDP (default 127.0.0.1:27100) and prints its address with its public key
      (host:port#key): what clients are given. --key keeps the relay's X25519 key in FILE (made there, mode
      0600, on the first run); without it every run has a new key. Clients need a ticket signed by one of the
      ticket keys, or nothing with --open (development). SIGTERM or SIGINT drains: no new sessions, clients
      are told the deadline (default 10 s) and move; the process exits when empty or at the deadline.
      --redis joins the relay fleet kept in that Redis server (needs the package @redis/client): a registry
      of relays (with --region's label) and one identity directory for all of them. --advertise is the IP
      clients reach this relay at (needed when --address is 0.0.0.0 or ::). --metrics serves /metrics
      (Prometheus), /health (503 while draining) and /stats.json over HTTP on IP:PORT (keep it private).
      --ws also takes relay datagrams over WebSocket on TCP IP:PORT, for browsers (needs the package ws).
      --webrtc also takes them over WebRTC data channels (unordered, no retransmits), for browsers: offers are
      POSTed to http://IP:PORT/ (TCP), the channels share UDP port PORT on IP, announced at --advertise when
      given (needs the package node-datachannel).
      --web serves the example page (a live net graph of a browser's connection to an echoing host in this
      process) on http://IP:PORT/; it needs --open and --ws or --webrtc.
      Every option may be given as an environment variable instead: NETLANE_ and its name in upper case with
      _ for -, e.g. NETLANE_PORT=27100, NETLANE_OPEN=1, NETLANE_TICKET_KEY=KEY1,KEY2 (a list, comma-separated).
      A flag given on the command line wins over its variable.
      Exit codes: 0 drained, 1 runtime failure, 2 usage error, 3 socket error (address in use), 4 key/file error.`,
  demo: DEMO_USAGE,
  top: TOP_USAGE,
  version: `  netlane version (or netlane --version)
      Prints the package's version.`,
} as const satisfies Record<keyof typeof OPTIONS, string>;
type Command = keyof typeof COMMAND_USAGE;

const USAGE = `usage:\n${Object.values(COMMAND_USAGE).join('\n')}\nexit codes: 0 ok, 1 runtime failure, 2 usage error, 3 socket error (address in use), 4 key or file error (docs/DEPLOY.md).`;

function isCommand(s: string | undefined): s is Command {
  return s !== undefined && Object.hasOwn(COMMAND_USAGE, s);
}

/** The package's version, from its package.json (three directories up from dist/src/cli/). */
function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  return String(pkg.version);
}

/** The command's options, or its usage printed (exit 0) when `--help` or `-h` is among them. */
function options(cmd: Command, args: readonly string[]): Options {
  const o = readOptions(cmd, args, OPTIONS[cmd]);
  if (o === null) {
    console.log(`usage:\n${COMMAND_USAGE[cmd]}`);
    process.exit(ExitCode.Ok);
  }
  return o;
}

/** Writes `text` to `file` (refusing to replace one unless `force`), or prints it. Secrets are written mode 0600. */
function output(text: string, file: string | undefined, secret: boolean, force: boolean): void {
  if (force && file === undefined) usageError('--force needs --out FILE (it allows replacing that file)');
  if (file === undefined) {
    process.stdout.write(text);
    return;
  }
  const mode = secret ? 0o600 : 0o644;
  try {
    writeFileSync(file, text, { mode, flag: force ? 'w' : 'wx' });
    if (force) chmodSync(file, mode);
  } catch (e) {
    if (e instanceof Error && 'code' in e && e.code === 'EEXIST') throw new CliError(ExitCode.File, `${file} exists; give --force to overwrite it`);
    throw new CliError(ExitCode.File, `cannot write ${file}: ${systemMessage(e)}`);
  }
  console.error(`netlane: wrote ${file}`);
}

/** `decode(text of file)`; a file that is not there or does not decode is a file error (exit 4). */
function keyFromFile<T>(file: string, what: string, decode: (text: string) => T): T {
  const text = readTextFile(file, what);
  try {
    return decode(text);
  } catch (e) {
    throw new CliError(ExitCode.File, `${what} ${file}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** A public key given as a key file or as base64 (`--ticket-key`, `--public-key`). */
function publicKeyOf(value: string, from: string): Uint8Array {
  if (existsSync(value)) return keyFromFile(value, from, decodePublicKey);
  try {
    return decodePublicKey(value);
  } catch {
    throw new CliError(ExitCode.File, `${from} ${value}: no such file, and not a base64 public key`);
  }
}

/** `--metrics`', `--ws`', `--webrtc`' or `--web`'s HOST:PORT (`[v6]:port`, or a port alone for 127.0.0.1). */
function metricsAddress(value: string, from: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d+)$/.exec(value) ?? /^()()(\d+)$/.exec(value);
  const host = m?.[1] || m?.[2] || '127.0.0.1';
  const port = Number(m?.[3]);
  if (!m || isIP(host) === 0 || !Number.isInteger(port) || port > 65535) usageError(`${from} must be IP:PORT (e.g. 127.0.0.1:9464)`);
  return { host, port };
}

function keygen(o: Options, provider: NodeCryptoProvider): void {
  output(encodeKeyFile(provider, provider.signingKey()), o.string('out')?.value, true, o.flag('force'));
}

function cert(o: Options, provider: NodeCryptoProvider): void {
  const caFile = o.required('ca');
  const id = o.required('identity');
  const keyFile = o.string('key')?.value;
  const pub = o.string('public-key')?.value;
  if ((keyFile === undefined) === (pub === undefined)) usageError('give exactly one of --key and --public-key');
  const days = o.int('days', 30, 1, 3650);
  let identity;
  try {
    identity = parseIdentity(id);
  } catch (e) {
    usageError(`--identity: ${e instanceof Error ? e.message : String(e)}`);
  }
  const ca: SigningKey = keyFromFile(caFile, '--ca', (t) => decodeKeyFile(provider, t));
  const publicKey = keyFile !== undefined ? keyFromFile(keyFile, '--key', decodePublicKey) : publicKeyOf(pub as string, '--public-key');
  const now = Math.floor(Date.now() / 1000);
  const c = signCertificate(provider, ca, { identity, publicKey, createdAt: now, expiresAt: now + days * 86_400, addresses: o.list('address').map((a) => a.value) });
  output(encodeCertificateFile(provider, c), o.string('out')?.value, false, o.flag('force'));
}

function ticket(o: Options, provider: NodeCryptoProvider): void {
  const keyFile = o.required('key');
  const user = o.required('user');
  const hours = o.int('hours', 6, 1, 24);
  const maxSessions = o.int('sessions', 4, 1, 255);
  const maxKbps = o.int('kbps', 8000, 1, 0x7fffffff);
  const key = keyFromFile(keyFile, '--key', (t) => decodeKeyFile(provider, t));
  const now = Math.floor(Date.now() / 1000);
  const t = signTicket(provider, key, { user, issuedAt: now, expiresAt: now + hours * 3600, maxSessions, maxKbps });
  output(`${Buffer.from(t).toString('base64url')}\n`, o.string('out')?.value, true, o.flag('force'));
}

/** The relay's X25519 key: read from `--key FILE`, made there on the first run, or new for this run. */
function relayKey(o: Options, provider: NodeCryptoProvider): KeyExchangePair {
  const keyFile = o.string('key');
  if (keyFile !== undefined && existsSync(keyFile.value)) return keyFromFile(keyFile.value, keyFile.from, (t) => decodeRelayKeyFile(provider, t));
  const seed = new Uint8Array(32);
  provider.fillRandom(seed);
  const key = provider.generateKeyExchange(seed);
  if (keyFile !== undefined) {
    try {
      writeFileSync(keyFile.value, encodeRelayKeyFile(seed, key), { mode: 0o600, flag: 'wx' });
    } catch (e) {
      throw new CliError(ExitCode.File, `${keyFile.from} ${keyFile.value}: cannot write the relay's key: ${systemMessage(e)}`);
    }
  }
  return key;
}

async function relay(o: Options, provider: NodeCryptoProvider): Promise<void> {
  const open = o.flag('open');
  const keys = new Map<number, Uint8Array>();
  for (const k of o.list('ticket-key')) {
    const pub = publicKeyOf(k.value, k.from);
    keys.set(ticketKeyId(provider, pub), pub);
  }
  const revoked = new Set<number>();
  for (const k of o.list('revoke')) {
    if (!/^[0-9a-fA-F]{1,8}$/.test(k.value)) usageError(`${k.from} must be a key id in hex (as the relay prints it), not ${k.value}`);
    revoked.add(Number.parseInt(k.value, 16) >>> 0);
  }
  if (!open && keys.size === 0) usageError(`give --ticket-key (the operator's ticket public key) or --open`);
  const address = o.string('address');
  if (address !== undefined && isIP(address.value) === 0) usageError(`${address.from} must be an IP address, not ${address.value}`);
  const port = o.int('port', 27100, 0, 65535);
  const maxSessions = o.int('max-sessions', 10_000, 1, 1_000_000);
  const idleSeconds = o.int('idle-seconds', 30, 1, 3600);
  const drainSeconds = o.int('drain-seconds', 10, 1, 3600);
  const statusSeconds = o.int('status-seconds', 0, 0, 3600);
  const redis = o.string('redis');
  const region = o.string('region');
  if (region !== undefined && !/^[\x20-\x7e]{1,32}$/.test(region.value)) usageError(`${region.from} must be 1..32 printable ASCII characters`);
  if (redis !== undefined && !/^rediss?:\/\//.test(redis.value)) usageError(`${redis.from} must be a redis://HOST:PORT URL`);
  if (redis === undefined && region !== undefined) usageError(`${region.from} needs --redis (a fleet)`);
  const advertise = o.string('advertise');
  if (advertise !== undefined && isIP(advertise.value) === 0) usageError(`${advertise.from} must be an IP address, not ${advertise.value}`);
  const metricsAt = o.string('metrics');
  const metrics = metricsAt !== undefined ? metricsAddress(metricsAt.value, metricsAt.from) : null;
  const wsAt = o.string('ws');
  const ws = wsAt !== undefined ? metricsAddress(wsAt.value, wsAt.from) : null;
  const rtcAt = o.string('webrtc');
  const rtc = rtcAt !== undefined ? metricsAddress(rtcAt.value, rtcAt.from) : null;
  const webAt = o.string('web');
  const web = webAt !== undefined ? metricsAddress(webAt.value, webAt.from) : null;
  if (webAt && !open) usageError(`${webAt.from} needs --open (the example page's host and browsers get no tickets)`);
  if (webAt && !ws && !rtc) usageError(`${webAt.from} needs --ws or --webrtc (a browser reaches the relay through a gateway)`);
  const staticKey = relayKey(o, provider);

  let store: FleetStore | null = null;
  // Errors while connecting make the one line the start fails with; once connected, each is a line of the log.
  let storeUp = false;
  if (redis !== undefined) store = await openRedisFleetStore(redis.value, { onError: (e) => storeUp && console.error(`netlane: redis: ${e instanceof Error ? e.message : String(e)}`) });
  storeUp = true;
  let server: RelayServer;
  try {
    server = RelayServer.open({
      ...(store ? { fleet: { store, ...(region !== undefined ? { region: region.value } : {}), ...(advertise !== undefined ? { advertise: advertise.value } : {}) } } : {}),
      address: address?.value ?? '127.0.0.1',
      port,
      open,
      ticketKeys: { keys, revoked },
      staticKey,
      maxSessions,
      idleTimeoutUs: idleSeconds * 1e6,
      keepProcessAlive: true,
      ...(ws || rtc ? { gateways: { ...(ws ? { ws: { address: ws.host, port: ws.port } } : {}), ...(rtc ? { webrtc: { address: rtc.host, port: rtc.port, ...(advertise !== undefined ? { announcedAddress: advertise.value } : {}) } } : {}) } } : {}),
    });
  } catch (e) {
    await store?.close();
    throw e;
  }
  const relay = server;
  const gateway = await relay.wsGateway?.listening.catch(async (e: unknown) => {
    relay.close();
    await store?.close();
    throw new CliError(ExitCode.Socket, `${wsAt?.from ?? '--ws'}: ${e instanceof NetlaneError ? e.message : systemMessage(e)}`);
  });
  const rtcGateway = await relay.webrtcGateway?.listening.catch(async (e: unknown) => {
    relay.close();
    await store?.close();
    throw new CliError(ExitCode.Socket, `${rtcAt?.from ?? '--webrtc'}: ${e instanceof NetlaneError ? e.message : systemMessage(e)}`);
  });
  const hostPort = (a: { address: string; port: number }): string => `${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}`;
  const unspecified = (a: string): boolean => a === '0.0.0.0' || a === '::';
  /** A gateway's URL for the example page: on 0.0.0.0 or ::, at the host name the page was loaded from. */
  const pageUrl = (scheme: string, at: { address: string; port: number }): GatewayUrl => (unspecified(at.address) ? (h: string) => `${scheme}://${h.includes(':') ? `[${h}]` : h}:${at.port}/` : `${scheme}://${hostPort(at)}/`);
  let page: WebPage | null = null;
  if (web) {
    try {
      page = await startWebPage({ relay, address: web.host, port: web.port, gateways: { ...(gateway ? { ws: pageUrl('ws', gateway) } : {}), ...(rtcGateway ? { webrtc: pageUrl('http', rtcGateway) } : {}) } });
    } catch (e) {
      relay.close();
      await store?.close();
      throw new CliError(ExitCode.Socket, `${webAt?.from ?? '--web'}: cannot listen on ${webAt?.value ?? ''}: ${systemMessage(e)}`);
    }
  }
  let http: MetricsServer | null = null;
  if (metrics) {
    try {
      http = await startMetricsServer({ ...metrics, sources: [relay] });
    } catch (e) {
      relay.close();
      await store?.close();
      throw new CliError(ExitCode.Socket, `${metricsAt?.from ?? '--metrics'}: cannot listen on ${metricsAt?.value ?? ''}: ${systemMessage(e)}`);
    }
  }
  if (statusSeconds > 0) {
    setInterval(() => {
      const st = relay.node.stats;
      console.log(`sessions ${relay.node.sessionCount} links ${relay.node.linkCount} forwarded ${st.forwardedPackets} pkts ${st.forwardedBytes} B, refused: cookie ${st.cookieRefused} ticket ${st.ticketRefused} rate ${st.rateLimited}, shed ${relay.admission.stats.shed}`);
    }, statusSeconds * 1000).unref();
  }
  let draining = false;
  const stop = (): void => {
    if (draining) process.exit(ExitCode.Ok);
    draining = true;
    console.log(`draining: ${relay.node.sessionCount} sessions, deadline ${drainSeconds} s`);
    relay.drain(drainSeconds, () => {
      console.log('drained');
      relay.close();
      void Promise.all([store?.close(), http?.close(), page?.close()]).finally(() => process.exit(ExitCode.Ok));
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // Only now: a supervisor may signal as soon as it reads this line, and the handlers must be there to drain.
  const keyList = [...keys.keys()].map((k) => k.toString(16).padStart(8, '0')).join(', ') || 'none';
  const fleetText = store && redis ? `; fleet at ${new URL(redis.value).host}${region !== undefined ? ` region ${region.value}` : ''}` : '';
  if (page) console.log(`netlane example page on ${page.url}`);
  if (http) console.log(`netlane metrics on http://${http.host.includes(':') ? `[${http.host}]` : http.host}:${http.port}/metrics (/health, /stats.json)`);
  const gatewayText = (gateway ? `; websocket gateway on ws://${hostPort(gateway)}/` : '') + (rtcGateway ? `; webrtc gateway signaling on http://${hostPort(rtcGateway)}/` : '');
  console.log(`netlane relay listening on ${relay.address} (${open ? 'open, no tickets needed' : 'tickets required'}; ticket keys: ${keyList}${fleetText}${gatewayText})`);
}

async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  const provider = new NodeCryptoProvider();
  switch (cmd) {
    case 'keygen':
      return keygen(options(cmd, rest), provider);
    case 'cert':
      return cert(options(cmd, rest), provider);
    case 'ticket':
      return ticket(options(cmd, rest), provider);
    case 'relay':
      return relay(options(cmd, rest), provider);
    case 'demo':
      options(cmd, rest); // --help, and the options checked before the demo starts
      await import('./demo.js');
      return;
    case 'top':
      options(cmd, rest); // --help, and the options checked
      process.exitCode = await top(rest, processOutput());
      return;
    case 'version':
    case '--version':
    case '-v':
      if (cmd === 'version') options(cmd, rest);
      console.log(version());
      return;
    case 'help':
      if (isCommand(rest[0])) {
        console.log(`usage:\n${COMMAND_USAGE[rest[0]]}`);
        return;
      }
      console.log(USAGE);
      return;
    case undefined:
    case '--help':
    case '-h':
      console.log(USAGE);
      return;
    default:
      usageError(`unknown command ${cmd}`);
  }
}

/** The exit code of an error thrown below main: sockets 3, files 4, usage 2, the rest 1. */
function classify(e: unknown): unknown {
  if (e instanceof CliError) return e;
  if (e instanceof NetlaneError) {
    if (e.code === 'ERR_NETLANE_SOCKET') return new CliError(ExitCode.Socket, e.message);
    if (e.code === 'ERR_NETLANE_INVALID_ARGUMENT' || e.code === 'ERR_NETLANE_CONFIG') return new CliError(ExitCode.Usage, e.message);
    return new CliError(ExitCode.Failure, e.message);
  }
  if (e instanceof Error && 'code' in e && typeof e.code === 'string' && /^E(NOENT|ACCES|PERM|ISDIR|EXIST)$/.test(e.code)) return new CliError(ExitCode.File, e.message);
  return e;
}

const hint = (): string => {
  const cmd = process.argv[2];
  return isCommand(cmd) ? `run 'netlane ${cmd} --help'` : `run 'netlane --help'`;
};

main(process.argv.slice(2)).catch((e: unknown) => reportAndExit(classify(e), hint()));

