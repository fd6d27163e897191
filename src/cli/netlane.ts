#!/usr/bin/env node
// The `netlane` command: keys, certificates, relay tickets, the relay node, the demo.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { NodeCryptoProvider } from '../crypto/node-provider.js';
import { signCertificate } from '../crypto/certificate.js';
import { parseIdentity } from '../crypto/identity.js';
import { decodeKeyFile, decodePublicKey, decodeRelayKeyFile, encodeCertificateFile, encodeKeyFile, encodeRelayKeyFile } from '../crypto/keyfile.js';
import type { KeyExchangePair } from '../crypto/provider.js';
import { NetlaneError } from '../util/errors.js';
import { RelayServer } from '../io/relay-server.js';
import { openRedisFleetStore, type FleetStore } from '../io/fleet-store.js';
import { signTicket, ticketKeyId } from '../relay/ticket.js';
import { addressKey } from '../relay/protocol.js';
import { parseAddress } from '../util/address.js';

/** Each command's usage, printed by `netlane CMD --help` (and all of them by `netlane --help`). */
const COMMAND_USAGE = {
  keygen: `  netlane keygen [--out FILE]
      Makes an Ed25519 key (identity key, or an authority key). Prints it, or writes FILE (mode 0600).`,
  cert: `  netlane cert --ca CA_KEY_FILE --identity ID (--key KEY_FILE | --public-key BASE64)
               [--days N] [--address IP]... [--out FILE]
      Signs a certificate for a public key with the authority's key. ID: str:NAME, id:N, gen:HEX, ip:ADDR:PORT.
      Valid from now for N days (default 30, at most 3650); --address restricts it to those source IPs.`,
  ticket: `  netlane ticket --key TICKET_KEY_FILE --user NAME [--hours H] [--sessions N] [--kbps K] [--out FILE]
      Signs a relay ticket for NAME with the operator's ticket key: valid from now for H hours (default 6,
      at most 24), N sessions per relay (default 4), K kbit/s per session (default 8000). Prints base64url.`,
  relay: `  netlane relay [--address IP] [--port N] [--key FILE] [--ticket-key PUBLIC_KEY_OR_KEY_FILE]... [--revoke KEY_ID]...
                [--open] [--max-sessions N] [--idle-seconds S] [--drain-seconds S] [--status-seconds S]
                [--redis redis://HOST:PORT] [--region NAME] [--advertise IP] [--ws HOST:PORT]
      Runs a relay node on UDP (default 127.0.0.1:27100) and prints its address with its public key
      (host:port#key): what clients are given. --key keeps the relay's X25519 key in FILE (made there, mode
      0600, on the first run); without it every run has a new key. Clients need a ticket signed by one of the
      ticket keys, or nothing with --open (development). SIGTERM or SIGINT drains: no new sessions, clients
      are told the deadline (default 10 s) and move; the process exits when empty or at the deadline.
      --redis (or env NETLANE_REDIS) joins the relay fleet kept in that Redis server (needs the package
      @redis/client): a registry of relays (with --region's label) and one identity directory for all of them.
      --advertise is the IP clients reach this relay at (needed when --address is 0.0.0.0 or ::).
      --ws also takes relay datagrams over WebSocket on TCP HOST:PORT, for browsers (needs the package ws).`,
  demo: `  netlane demo
      Runs the demo (as npm start).`,
} as const;
type Command = keyof typeof COMMAND_USAGE;

const USAGE = `usage:\n${Object.values(COMMAND_USAGE).join('\n')}`;

function isCommand(s: string | undefined): s is Command {
  return s !== undefined && Object.hasOwn(COMMAND_USAGE, s);
}

/** Prints `cmd`'s usage and exits 0. */
function usage(cmd: Command): never {
  console.log(`usage:\n${COMMAND_USAGE[cmd]}`);
  process.exit(0);
}

/** {@link usage} if `--help` or `-h` stands where an option name would, not as the value of one of `known` (as {@link options} reads them). */
function helpIfAsked(cmd: Command, args: readonly string[], known: readonly string[]): void {
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === '--help' || a === '-h') usage(cmd);
    if (a.startsWith('--') && known.includes(a.slice(2)) && !(args[i + 1]?.startsWith('--') ?? true)) i++; // its value
  }
}

function fail(msg: string): never {
  console.error(`netlane: ${msg}\n\n${USAGE}`);
  process.exit(2);
}

function options(cmd: Command, args: string[], known: readonly string[]): Map<string, string[]> {
  helpIfAsked(cmd, args, known);
  const out = new Map<string, string[]>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (!a.startsWith('--') || !known.includes(a.slice(2))) fail(`unknown argument ${a}`);
    const v = args[i + 1];
    if (v === undefined || v.startsWith('--')) fail(`${a} needs a value`);
    out.set(a.slice(2), [...(out.get(a.slice(2)) ?? []), v]);
    i++;
  }
  return out;
}

function flag(args: string[], name: string): boolean {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return false;
  args.splice(i, 1);
  return true;
}

function int(o: Map<string, string[]>, name: string, def: number, min: number, max: number): number {
  const v = Number(one(o, name) ?? def);
  if (!Number.isInteger(v) || v < min || v > max) fail(`--${name} must be an integer in ${min}..${max}`);
  return v;
}

function one(o: Map<string, string[]>, name: string): string | undefined {
  const v = o.get(name);
  if (v && v.length > 1) fail(`--${name} given twice`);
  return v?.[0];
}

function output(text: string, file: string | undefined, secret: boolean): void {
  if (file) {
    writeFileSync(file, text, { mode: secret ? 0o600 : 0o644 });
    console.error(`netlane: wrote ${file}`);
  } else process.stdout.write(text);
}

async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  const provider = new NodeCryptoProvider();
  switch (cmd) {
    case 'keygen': {
      const o = options('keygen', rest, ['out']);
      output(encodeKeyFile(provider, provider.signingKey()), one(o, 'out'), true);
      return;
    }
    case 'cert': {
      const o = options('cert', rest, ['ca', 'identity', 'key', 'public-key', 'days', 'address', 'out']);
      const caFile = one(o, 'ca') ?? fail('--ca is required');
      const id = one(o, 'identity') ?? fail('--identity is required');
      const keyFile = one(o, 'key');
      const pub = one(o, 'public-key');
      if ((keyFile === undefined) === (pub === undefined)) fail('give exactly one of --key and --public-key');
      const days = Number(one(o, 'days') ?? 30);
      if (!Number.isInteger(days) || days < 1 || days > 3650) fail('--days must be an integer in 1..3650');
      const ca = decodeKeyFile(provider, readFileSync(caFile, 'utf8'));
      const publicKey = decodePublicKey(keyFile !== undefined ? readFileSync(keyFile, 'utf8') : (pub as string));
      const now = Math.floor(Date.now() / 1000);
      const cert = signCertificate(provider, ca, { identity: parseIdentity(id), publicKey, createdAt: now, expiresAt: now + days * 86_400, addresses: o.get('address') ?? [] });
      output(encodeCertificateFile(provider, cert), one(o, 'out'), false);
      return;
    }
    case 'ticket': {
      const o = options('ticket', rest, ['key', 'user', 'hours', 'sessions', 'kbps', 'out']);
      const key = decodeKeyFile(provider, readFileSync(one(o, 'key') ?? fail('--key is required'), 'utf8'));
      const user = one(o, 'user') ?? fail('--user is required');
      const hours = int(o, 'hours', 6, 1, 24);
      const now = Math.floor(Date.now() / 1000);
      const ticket = signTicket(provider, key, { user, issuedAt: now, expiresAt: now + hours * 3600, maxSessions: int(o, 'sessions', 4, 1, 255), maxKbps: int(o, 'kbps', 8000, 1, 0x7fffffff) });
      output(`${Buffer.from(ticket).toString('base64url')}\n`, one(o, 'out'), true);
      return;
    }
    case 'relay': {
      const open = flag(rest, 'open');
      const o = options('relay', rest, ['address', 'port', 'key', 'ticket-key', 'revoke', 'max-sessions', 'idle-seconds', 'drain-seconds', 'status-seconds', 'redis', 'region', 'advertise', 'ws']);
      const keyFile = one(o, 'key');
      let staticKey: KeyExchangePair;
      if (keyFile !== undefined && existsSync(keyFile)) staticKey = decodeRelayKeyFile(provider, readFileSync(keyFile, 'utf8'));
      else {
        const seed = new Uint8Array(32);
        provider.fillRandom(seed);
        staticKey = provider.generateKeyExchange(seed);
        if (keyFile !== undefined) writeFileSync(keyFile, encodeRelayKeyFile(seed, staticKey), { mode: 0o600, flag: 'wx' });
      }
      const keys = new Map<number, Uint8Array>();
      for (const f of o.get('ticket-key') ?? []) {
        const pub = decodePublicKey(readFileSync(f, 'utf8'));
        keys.set(ticketKeyId(provider, pub), pub);
      }
      const revoked = new Set((o.get('revoke') ?? []).map((k) => Number.parseInt(k, 16) >>> 0));
      if (!open && keys.size === 0) fail('give --ticket-key (the operator\'s ticket public key) or --open');
      const drainSeconds = int(o, 'drain-seconds', 10, 1, 3600);
      const statusSeconds = int(o, 'status-seconds', 0, 0, 3600);
      const redisUrl = one(o, 'redis') ?? (process.env['NETLANE_REDIS'] || undefined);
      const region = one(o, 'region');
      if (region !== undefined && !/^[\x20-\x7e]{1,32}$/.test(region)) fail('--region must be 1..32 printable ASCII characters');
      let store: FleetStore | null = null;
      if (redisUrl !== undefined) {
        if (!/^rediss?:\/\//.test(redisUrl)) fail('--redis must be a redis://HOST:PORT URL');
        store = await openRedisFleetStore(redisUrl, { onError: (e) => console.error(`netlane: redis: ${e instanceof Error ? e.message : String(e)}`) });
      } else if (region !== undefined) fail('--region needs --redis (a fleet)');
      const advertise = one(o, 'advertise');
      const wsText = one(o, 'ws');
      const ws = wsText === undefined ? undefined : parseAddress(wsText);
      if (ws === null) fail('--ws must be HOST:PORT with an IP literal (the WebSocket gateway for browsers)');
      const relay = RelayServer.open({
        ...(ws ? { gateways: { ws } } : {}),
        ...(store ? { fleet: { store, ...(region !== undefined ? { region } : {}), ...(advertise !== undefined ? { advertise } : {}) } } : {}),
        address: one(o, 'address') ?? '127.0.0.1',
        port: int(o, 'port', 27100, 0, 65535),
        open,
        ticketKeys: { keys, revoked },
        staticKey,
        maxSessions: int(o, 'max-sessions', 10_000, 1, 1_000_000),
        idleTimeoutUs: int(o, 'idle-seconds', 30, 1, 3600) * 1e6,
        keepProcessAlive: true,
      });
      if (statusSeconds > 0) {
        setInterval(() => {
          const st = relay.node.stats;
          console.log(`sessions ${relay.node.sessionCount} links ${relay.node.linkCount} forwarded ${st.forwardedPackets} pkts ${st.forwardedBytes} B, refused: cookie ${st.cookieRefused} ticket ${st.ticketRefused} rate ${st.rateLimited}, shed ${relay.admission.stats.shed}`);
        }, statusSeconds * 1000).unref();
      }
      let draining = false;
      const stop = (): void => {
        if (draining) process.exit(0);
        draining = true;
        console.log(`draining: ${relay.node.sessionCount} sessions, deadline ${drainSeconds} s`);
        relay.drain(drainSeconds, () => {
          console.log('drained');
          relay.close();
          void Promise.resolve(store?.close()).finally(() => process.exit(0));
        });
      };
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
      // Only now: a supervisor may signal as soon as it reads this line, and the handlers must be there to drain.
      const keyList = [...keys.keys()].map((k) => k.toString(16).padStart(8, '0')).join(', ') || 'none';
      const fleetText = store ? `; fleet at ${new URL(redisUrl ?? "redis://").host}${region !== undefined ? ` region ${region}` : ""}` : "";
      const gateway = await relay.wsGateway?.listening.catch((e: unknown) => fail(e instanceof Error ? e.message : String(e)));
      const gatewayText = gateway ? `; websocket gateway on ws://${addressKey(gateway)}/` : '';
      console.log(`netlane relay listening on ${relay.address} (${open ? 'open, no tickets needed' : 'tickets required'}; ticket keys: ${keyList}${fleetText}${gatewayText})`);
      return;
    }
    case 'demo':
      helpIfAsked('demo', rest, []);
      await import('./demo.js');
      return;
    case 'help':
      if (isCommand(rest[0])) usage(rest[0]);
      console.log(USAGE);
      return;
    case undefined:
    case '--help':
    case '-h':
      console.log(USAGE);
      return;
    default:
      fail(`unknown command ${cmd}`);
  }
}

main(process.argv.slice(2)).catch((e: unknown) => {
  if (e instanceof NetlaneError) fail(e.message);
  if (e instanceof Error && 'code' in e && e.code === 'ENOENT') fail(e.message);
  throw e;
});
