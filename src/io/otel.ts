// netlane's diagnostics channels as OpenTelemetry metrics, when the application has @opentelemetry/api (an optional
// package netlane does not depend on; imported at run time, as @redis/client is).
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import { ConnectionState } from '../core/types.js';
import { channels } from './diagnostics.js';

/** Not a literal in the import, so that TypeScript does not need the package to build. */
const OTEL_MODULE = '@opentelemetry/api';
/** Connections whose handshake or life is being timed, at most: past it the oldest is forgotten. */
const MAX_TIMED = 65_536;

/** An instrument of @opentelemetry/api as netlane calls it (a counter's `add`, a histogram's `record`). */
export interface OpenTelemetryInstrument {
  add?(value: number, attributes?: Record<string, string>): void;
  record?(value: number, attributes?: Record<string, string>): void;
}
/** A meter of @opentelemetry/api as netlane calls it. */
export interface OpenTelemetryMeter {
  createCounter(name: string, options: { description: string; unit?: string }): OpenTelemetryInstrument;
  createUpDownCounter(name: string, options: { description: string; unit?: string }): OpenTelemetryInstrument;
  createHistogram(name: string, options: { description: string; unit?: string }): OpenTelemetryInstrument;
}
/** The part of the @opentelemetry/api module read here. */
export interface OpenTelemetryApi {
  readonly metrics: { getMeter(name: string, version?: string): OpenTelemetryMeter };
}

/** Options of {@link exportDiagnosticsToOpenTelemetry}. */
export interface OpenTelemetryOptions {
  /** The API module to use. Default: `import('@opentelemetry/api')` (the application's copy, with its global MeterProvider). */
  readonly api?: OpenTelemetryApi;
  /** The meter's name. Default `netlane`. */
  readonly meterName?: string;
}

/** A running mapping; {@link close} unsubscribes from the channels. */
export interface OpenTelemetryBridge {
  close(): void;
}

const STATE_NAMES = new Map<number, string>(Object.entries(ConnectionState).map(([name, v]) => [v, name]));

/**
 * Maps the diagnostics channels (see `channels`) to OpenTelemetry instruments on the meter `netlane`:
 * counters `netlane.socket.opens`, `netlane.socket.closes`, `netlane.socket.send_errors` (attribute `error.type`),
 * `netlane.connection.state_changes` (attribute `netlane.state`), the up-down counter `netlane.connection.active`
 * (connections Connected now), and histograms `netlane.connection.handshake.duration` (s, from Connecting to
 * Connected) and `netlane.connection.duration` (s, from Connected to the end). Resolves null when
 * @opentelemetry/api is not installed. Without a MeterProvider registered by the application, the API records nothing.
 */
export async function exportDiagnosticsToOpenTelemetry(options: OpenTelemetryOptions = {}): Promise<OpenTelemetryBridge | null> {
  let api = options.api;
  if (!api) {
    try {
      api = (await import(OTEL_MODULE)) as OpenTelemetryApi;
    } catch {
      return null;
    }
  }
  const meter = api.metrics.getMeter(options.meterName ?? 'netlane');
  const opens = meter.createCounter('netlane.socket.opens', { description: 'UDP sockets opened.' });
  const closes = meter.createCounter('netlane.socket.closes', { description: 'UDP sockets closed.' });
  const sendErrors = meter.createCounter('netlane.socket.send_errors', { description: 'Sends the operating system refused.' });
  const changes = meter.createCounter('netlane.connection.state_changes', { description: 'Connection state changes, by the new state.' });
  const active = meter.createUpDownCounter('netlane.connection.active', { description: 'Connections in the Connected state.' });
  const handshake = meter.createHistogram('netlane.connection.handshake.duration', { description: 'Time from Connecting to Connected.', unit: 's' });
  const lifetime = meter.createHistogram('netlane.connection.duration', { description: 'Time from Connected to the end of the connection.', unit: 's' });
  /** Connecting since (ms), and Connected since, by connection. */
  const connecting = new Map<string, number>();
  const connected = new Map<string, number>();
  const remember = (m: Map<string, number>, key: string, at: number): void => {
    if (m.size >= MAX_TIMED) m.delete(m.keys().next().value as string);
    m.set(key, at);
  };

  const onOpen = (): void => opens.add?.(1);
  const onClose = (): void => closes.add?.(1);
  const onSendError = (m: unknown): void => {
    const e = (m as { error?: { code?: unknown } }).error;
    sendErrors.add?.(1, { 'error.type': typeof e?.code === 'string' ? e.code : 'unknown' });
  };
  const onStatus = (m: unknown): void => {
    const s = m as { connection: unknown; oldState: number; state: number; remote?: { address?: string; port?: number } | null };
    const key = `${String(s.connection)}|${s.remote?.address ?? ''}|${s.remote?.port ?? ''}`;
    const now = performance.now();
    changes.add?.(1, { 'netlane.state': STATE_NAMES.get(s.state) ?? String(s.state) });
    if (s.state === ConnectionState.Connecting || s.state === ConnectionState.FindingRoute) {
      if (!connecting.has(key)) remember(connecting, key, now);
    } else if (s.state === ConnectionState.Connected) {
      const since = connecting.get(key);
      connecting.delete(key);
      if (since !== undefined) handshake.record?.((now - since) / 1000);
      remember(connected, key, now);
      active.add?.(1);
    } else {
      connecting.delete(key);
      const since = connected.get(key);
      if (since !== undefined) {
        connected.delete(key);
        lifetime.record?.((now - since) / 1000);
        active.add?.(-1);
      }
    }
  };
  const subscriptions: [string, (m: unknown) => void][] = [
    [channels.socketOpen.name as string, onOpen],
    [channels.socketClose.name as string, onClose],
    [channels.sendError.name as string, onSendError],
    [channels.connectionStatus.name as string, onStatus],
  ];
  for (const [name, fn] of subscriptions) subscribe(name, fn);
  return {
    close() {
      for (const [name, fn] of subscriptions) unsubscribe(name, fn);
      connecting.clear();
      connected.clear();
    },
  };
}
