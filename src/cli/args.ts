// The command line's parts shared by `netlane` and the demo: options read with node:util parseArgs (`--name=value`
// and `--name value`), NETLANE_* environment variables under the flags, one-line errors and an exit code per class.
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';

/** The exit codes of `netlane` (docs/DEPLOY.md "Exit codes"). */
export const ExitCode = {
  Ok: 0,
  /** A runtime failure: the fleet store unreachable, a drain cut short, anything unexpected. */
  Failure: 1,
  /** A usage error: an unknown option, a missing or bad value (a flag's or a NETLANE_* variable's). */
  Usage: 2,
  /** A socket could not be opened: the address is in use or not this machine's. */
  Socket: 3,
  /** A key or file error: missing, unreadable, not a key, or already there (keygen without --force). */
  File: 4,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** An error the command line reports in one line (`netlane: MESSAGE`) and exits with `exitCode`. */
export class CliError extends Error {
  constructor(
    readonly exitCode: ExitCode,
    message: string,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** A usage error: exits 2. */
export function usageError(message: string): never {
  throw new CliError(ExitCode.Usage, message);
}

/** One option of a command: a value (`string`, possibly repeated) or a flag (`boolean`), and whether NETLANE_* sets it. */
export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly multiple?: boolean;
  /** The option is also read from `NETLANE_<NAME>` (upper case, `-` as `_`); a repeated option takes a comma-separated list. */
  readonly env?: boolean;
}
export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

/** The environment variable of option `name`: `max-sessions` is NETLANE_MAX_SESSIONS. */
export function envName(name: string): string {
  return `NETLANE_${name.toUpperCase().replaceAll('-', '_')}`;
}

/** A value and where it came from (`--port` or `NETLANE_PORT`), for the error that names it. */
export interface Sourced<T> {
  readonly value: T;
  readonly from: string;
}

/** Parsed options: each value with where it came from; flags override the environment. */
export class Options {
  constructor(
    readonly values: ReadonlyMap<string, Sourced<string[] | boolean>>,
    readonly command: string,
  ) {}

  /** The single value of `name`, or undefined. */
  string(name: string): Sourced<string> | undefined {
    const v = this.values.get(name);
    if (!v || typeof v.value === 'boolean') return undefined;
    if (v.value.length > 1) usageError(`${v.from} given twice`);
    const s = v.value[0];
    return s === undefined ? undefined : { value: s, from: v.from };
  }

  /** Every value of a repeated option (flags' and the environment's are not merged: flags win). */
  list(name: string): Sourced<string>[] {
    const v = this.values.get(name);
    if (!v || typeof v.value === 'boolean') return [];
    return v.value.map((value) => ({ value, from: v.from }));
  }

  flag(name: string): boolean {
    return this.values.get(name)?.value === true;
  }

  /** `name`'s value or a usage error saying it is required. */
  required(name: string): string {
    return this.string(name)?.value ?? usageError(`--${name} is required`);
  }

  /** `name` as an integer in min..max, `def` when not given. */
  int(name: string, def: number, min: number, max: number): number {
    const s = this.string(name);
    if (s === undefined) return def;
    const v = /^-?\d+$/.test(s.value.trim()) ? Number(s.value) : Number.NaN;
    if (!Number.isSafeInteger(v) || v < min || v > max) usageError(`${s.from} must be an integer in ${min}..${max}`);
    return v;
  }

  /** `name` as a number in min..max, `def` when not given. */
  number(name: string, def: number, min: number, max: number): number {
    const s = this.string(name);
    if (s === undefined) return def;
    const v = s.value.trim() === '' ? Number.NaN : Number(s.value);
    if (!Number.isFinite(v) || v < min || v > max) usageError(`${s.from} must be a number in ${min}..${max}`);
    return v;
  }
}

const FLAG_TRUE = new Set(['1', 'true', 'yes', 'on']);
const FLAG_FALSE = new Set(['0', 'false', 'no', 'off', '']);

/**
 * Reads `args` against `specs` (strict: an unknown option or a stray argument is a usage error), then the
 * NETLANE_* variables of `env` for the options the flags did not give. `--help`/`-h` anywhere an option may stand
 * returns null (the caller prints the command's usage), whatever else is wrong with the line.
 */
export function readOptions(command: string, args: readonly string[], specs: OptionSpecs, env: NodeJS.ProcessEnv = process.env): Options | null {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = { help: { type: 'boolean', short: 'h' } };
  for (const [name, s] of Object.entries(specs)) options[name] = { type: s.type, ...(s.multiple ? { multiple: true } : {}) };
  const loose = parseArgs({ args: [...args], options, strict: false, allowPositionals: true, tokens: true });
  if (loose.tokens.some((t) => t.kind === 'option' && t.name === 'help')) return null;
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: [...args], options, strict: true, allowPositionals: false });
  } catch (e) {
    usageError(parseArgsMessage(e));
  }
  const seen = new Set<string>();
  for (const t of loose.tokens) {
    if (t.kind !== 'option' || specs[t.name]?.multiple) continue;
    if (seen.has(t.name)) usageError(`--${t.name} given twice`);
    seen.add(t.name);
  }
  const values = new Map<string, Sourced<string[] | boolean>>();
  for (const [name, v] of Object.entries(parsed.values)) {
    if (name === 'help' || v === undefined) continue;
    values.set(name, { value: typeof v === 'boolean' ? v : typeof v === 'string' ? [v] : v.filter((x): x is string => typeof x === 'string'), from: `--${name}` });
  }
  for (const [name, s] of Object.entries(specs)) {
    if (!s.env || values.has(name)) continue;
    const key = envName(name);
    const raw = env[key];
    if (raw === undefined || (raw === '' && s.type === 'string')) continue;
    if (s.type === 'boolean') {
      const low = raw.trim().toLowerCase();
      if (FLAG_TRUE.has(low)) values.set(name, { value: true, from: key });
      else if (!FLAG_FALSE.has(low)) usageError(`${key} must be 1 or 0 (true or false)`);
    } else {
      const list = s.multiple ? raw.split(',').map((x) => x.trim()).filter((x) => x !== '') : [raw];
      values.set(name, { value: list, from: key });
    }
  }
  return new Options(values, command);
}

/** parseArgs' error, said in one line with the option's name. */
function parseArgsMessage(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  const code = e instanceof Error && 'code' in e ? e.code : undefined;
  const name = /'(-{1,2}[^' ]+)/.exec(msg)?.[1];
  const arg = /argument '([^']*)'/.exec(msg)?.[1];
  switch (code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown option ${name ?? msg}`;
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `unexpected argument ${arg ?? msg}`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      if (msg.includes('does not take an argument')) return `${name ?? 'a flag'} takes no value`;
      if (msg.includes('ambiguous')) return `${name ?? 'an option'} needs a value (a value starting with '-' is written ${name ?? '--name'}=VALUE)`;
      return `${name ?? 'an option'} needs a value`;
    default:
      return msg.split('\n')[0] ?? msg;
  }
}

/** Reads a text file named by an option; a file that is not there or not readable is a file error (exit 4). */
export function readTextFile(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new CliError(ExitCode.File, `${what} ${path}: ${systemMessage(e)}`);
  }
}

/** `ENOENT: no such file or directory` of a system error, without the call and path Node adds. */
export function systemMessage(e: unknown): string {
  if (e instanceof Error && 'code' in e && typeof e.code === 'string') {
    const m = /^[A-Z]+: ([^,]+)/.exec(e.message);
    return `${e.code}${m ? ` (${m[1]})` : ''}`;
  }
  return e instanceof Error ? e.message : String(e);
}

/**
 * Runs a command line's body: a CliError prints `netlane: MESSAGE` (with `hint` after a usage error) on stderr
 * in one line and exits with its code; anything else prints its message and exits 1.
 */
export function reportAndExit(e: unknown, hint: string): never {
  if (e instanceof CliError) {
    console.error(`netlane: ${e.message}${e.exitCode === ExitCode.Usage && hint ? ` (${hint})` : ''}`);
    process.exit(e.exitCode);
  }
  console.error(`netlane: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(ExitCode.Failure);
}
