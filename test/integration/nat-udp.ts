// Plain UDP (node:dgram) roles for test/integration/nat-harness.test.ts, run inside the namespaces of
// test/support/netns.ts; no netlane code. Each prints JSON lines on stdout, takes JSON lines on stdin, and exits
// when its stdin ends (so that it never outlives the test process).
//
//   node nat-udp.js reflector PORT...   in pub: a STUN-like echo on each PORT. A datagram {op:'reflect', id}
//       is answered from the same port with {op:'mapped', id, address, port, via} (the sender's address:port as
//       seen here, and the port it reached); with `other: true` it is first answered from the next port too, so
//       that a test sees whether a NAT lets in a source its host never sent to; with `at: {address, port}` the
//       answers go there instead of to the sender. {op:'relay', to, data} is
//       forwarded from the same port to `to` as {op:'relayed', from, data}. Prints {event:'ready', ports}.
//   node nat-udp.js peer NAME           in a home host: one socket on a free port. Prints {event:'ready', port}.
//       Commands on stdin:
//         {cmd:'reflect', address, port, id, other?, at?}  asks the reflector (sent again every 200 ms, 10 times at
//                                                      most, until answered); prints {event:'mapped', id, address, port}
//         {cmd:'punch', address, port, count, intervalMs, tag?}  sends {op:'punch', from: NAME, seq, tag} `count` times,
//                                                      then prints {event:'punchDone', sent}
//         {cmd:'relay', via: {address, port}, to: {address, port}, data}   sends a datagram to `to` through the reflector
//       and prints {event:'received', from: {address, port}, op, ...datagram} for every datagram that is not a
//       reflector's answer, and {event:'relayed', from, data} for what the reflector forwarded.
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { createInterface } from 'node:readline';

type Json = Record<string, unknown>;

function out(line: Json): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

function parse(buf: Buffer): Json | null {
  try {
    const v: unknown = JSON.parse(buf.toString('utf8'));
    return typeof v === 'object' && v !== null ? (v as Json) : null;
  } catch {
    return null;
  }
}

function send(sock: Socket, msg: Json, port: number, address: string): void {
  sock.send(JSON.stringify(msg), port, address);
}

function bind(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(port, '0.0.0.0', () => {
      s.removeListener('error', reject);
      s.on('error', (e) => out({ event: 'error', message: e.message }));
      resolve(s);
    });
  });
}

process.stdin.on('end', () => process.exit(0));
process.stdin.resume();

const [role, ...rest] = process.argv.slice(2);

if (role === 'reflector') {
  const ports = rest.map(Number);
  const socks = await Promise.all(ports.map(bind));
  socks.forEach((sock, i) => {
    const port = ports[i] as number;
    const other = socks[(i + 1) % socks.length] as Socket;
    sock.on('message', (buf: Buffer, from: RemoteInfo) => {
      const m = parse(buf);
      if (m?.['op'] === 'reflect') {
        const answer = { op: 'mapped', id: m['id'], address: from.address, port: from.port, via: port };
        const at = (m['at'] as { address: string; port: number } | undefined) ?? from;
        if (m['other'] === true) send(other, { ...answer, via: ports[(i + 1) % ports.length] }, at.port, at.address);
        send(sock, answer, at.port, at.address);
      } else if (m?.['op'] === 'relay') {
        const to = m['to'] as { address: string; port: number };
        send(sock, { op: 'relayed', from: { address: from.address, port: from.port }, data: m['data'] }, to.port, to.address);
      }
    });
  });
  out({ event: 'ready', ports });
} else if (role === 'peer') {
  const name = rest[0] ?? 'peer';
  const sock = await bind(0);
  const pending = new Map<unknown, NodeJS.Timeout>();
  sock.on('message', (buf: Buffer, from: RemoteInfo) => {
    const m = parse(buf) ?? { text: buf.toString('utf8') };
    const src = { address: from.address, port: from.port };
    if (m['op'] === 'mapped' && pending.has(m['id'])) {
      clearInterval(pending.get(m['id']));
      pending.delete(m['id']);
      out({ event: 'mapped', id: m['id'], address: m['address'], port: m['port'], via: m['via'], from: src });
    } else if (m['op'] === 'relayed') {
      out({ event: 'relayed', from: m['from'], data: m['data'], via: src });
    } else {
      out({ ...m, event: 'received', from: src });
    }
  });
  createInterface({ input: process.stdin }).on('line', (text) => {
    const c = JSON.parse(text) as Json;
    const address = c['address'] as string;
    const port = c['port'] as number;
    if (c['cmd'] === 'reflect') {
      const req = { op: 'reflect', id: c['id'], other: c['other'] === true, ...(c['at'] ? { at: c['at'] } : {}) };
      let tries = 0;
      send(sock, req, port, address);
      const t = setInterval(() => {
        if (++tries >= 10) {
          clearInterval(t);
          out({ event: 'reflectFailed', id: c['id'] });
        } else send(sock, req, port, address);
      }, 200);
      pending.set(c['id'], t);
    } else if (c['cmd'] === 'punch') {
      const count = c['count'] as number;
      let seq = 0;
      const tick = (): void => {
        send(sock, { op: 'punch', from: name, seq: seq++, tag: c['tag'] ?? null }, port, address);
        if (seq >= count) out({ event: 'punchDone', sent: seq });
        else setTimeout(tick, c['intervalMs'] as number);
      };
      tick();
    } else if (c['cmd'] === 'relay') {
      const via = c['via'] as { address: string; port: number };
      send(sock, { op: 'relay', to: c['to'], data: c['data'] }, via.port, via.address);
    }
  });
  out({ event: 'ready', port: sock.address().port });
} else {
  process.stderr.write(`usage: nat-udp.js reflector PORT... | peer NAME\n`);
  process.exit(2);
}
