#!/usr/bin/env node
// The `netlane` command: keys and certificates now; the demo; relay and tickets when they land.
import { readFileSync, writeFileSync } from 'node:fs';
import { NodeCryptoProvider } from '../crypto/node-provider.js';
import { signCertificate } from '../crypto/certificate.js';
import { parseIdentity } from '../crypto/identity.js';
import { decodeKeyFile, decodePublicKey, encodeCertificateFile, encodeKeyFile } from '../crypto/keyfile.js';
import { NetlaneError } from '../util/errors.js';

const USAGE = `usage:
  netlane keygen [--out FILE]
      Makes an Ed25519 key (identity key, or an authority key). Prints it, or writes FILE (mode 0600).
  netlane cert --ca CA_KEY_FILE --identity ID (--key KEY_FILE | --public-key BASE64)
               [--days N] [--address IP]... [--out FILE]
      Signs a certificate for a public key with the authority's key. ID: str:NAME, id:N, gen:HEX, ip:ADDR:PORT.
      Valid from now for N days (default 30, at most 3650); --address restricts it to those source IPs.
  netlane demo
      Runs the demo (as npm start).`;

function fail(msg: string): never {
  console.error(`netlane: ${msg}\n\n${USAGE}`);
  process.exit(2);
}

function options(args: string[], known: readonly string[]): Map<string, string[]> {
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
      const o = options(rest, ['out']);
      output(encodeKeyFile(provider, provider.signingKey()), one(o, 'out'), true);
      return;
    }
    case 'cert': {
      const o = options(rest, ['ca', 'identity', 'key', 'public-key', 'days', 'address', 'out']);
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
    case 'demo':
      await import('./demo.js');
      return;
    case undefined:
    case 'help':
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
