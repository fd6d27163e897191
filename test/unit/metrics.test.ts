import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatPrometheus } from '../../src/io/metrics.js';
import { readOptions } from '../../src/cli/args.js';

test('formatPrometheus: one HELP and TYPE per family, its samples together, labels and help escaped', () => {
  const text = formatPrometheus([
    { name: 'netlane_a_total', help: 'A count.', type: 'counter', value: 1, labels: { reason: 'x' } },
    { name: 'netlane_b', help: 'Two\nlines \\ here', type: 'gauge', value: Number.POSITIVE_INFINITY },
    { name: 'netlane_a_total', help: 'A count.', type: 'counter', value: 2, labels: { reason: 'say "hi"\\\n' } },
  ]);
  assert.equal(
    text,
    [
      '# HELP netlane_a_total A count.',
      '# TYPE netlane_a_total counter',
      'netlane_a_total{reason="x"} 1',
      'netlane_a_total{reason="say \\"hi\\"\\\\\\n"} 2',
      '# HELP netlane_b Two\\nlines \\\\ here',
      '# TYPE netlane_b gauge',
      'netlane_b +Inf',
      '',
    ].join('\n'),
  );
});

test('readOptions: a flag wins over its NETLANE_* variable; a repeated option takes a comma-separated list; --help wins over errors', () => {
  const specs = { port: { type: 'string', env: true }, 'ticket-key': { type: 'string', multiple: true, env: true }, open: { type: 'boolean', env: true }, out: { type: 'string' } } as const;
  const env = { NETLANE_PORT: '1', NETLANE_TICKET_KEY: 'a, b,,c', NETLANE_OPEN: 'true', NETLANE_OUT: 'ignored' };
  const o = readOptions('relay', ['--port=2'], specs, env);
  assert.ok(o);
  assert.deepEqual(o.string('port'), { value: '2', from: '--port' });
  assert.deepEqual(o.list('ticket-key').map((k) => k.value), ['a', 'b', 'c']);
  assert.equal(o.list('ticket-key')[0]?.from, 'NETLANE_TICKET_KEY');
  assert.equal(o.flag('open'), true);
  assert.equal(o.string('out'), undefined, 'an option without env ignores the environment');
  assert.equal(readOptions('relay', ['--open'], specs, { NETLANE_OPEN: '0' })?.flag('open'), true);
  assert.equal(readOptions('relay', [], specs, { NETLANE_OPEN: '0' })?.flag('open'), false);
  assert.equal(readOptions('relay', ['--bogus', '-h'], specs, {}), null);
  assert.throws(() => readOptions('relay', ['--bogus'], specs, {}), { name: 'CliError', exitCode: 2, message: 'unknown option --bogus' });
  assert.throws(() => readOptions('relay', ['--port', '1', '--port', '2'], specs, {}), { exitCode: 2, message: '--port given twice' });
});
