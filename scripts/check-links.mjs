// Checks that every link in README.md and docs/*.md resolves inside the repository: relative links name a file
// or directory that exists (and does not leave the repository), `#anchors` name a heading of the target
// Markdown file (GitHub's slugs), and a Markdown file named in the prose (`DESIGN.md`, `docs/X.md`) exists.
// External links (http, https, mailto) are not fetched. Fenced code blocks are skipped. No dependency.
//   node scripts/check-links.mjs            checks README.md and docs/*.md
//   node scripts/check-links.mjs FILE...    checks those files
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The lines of `text` outside fenced code blocks, with their line numbers (1-based). */
function proseLines(text) {
  const out = [];
  let fence = null;
  text.split('\n').forEach((line, i) => {
    const m = /^\s*(`{3,}|~{3,})/.exec(line);
    if (m) {
      const mark = m[1];
      if (fence === null) fence = mark[0];
      else if (mark[0] === fence) fence = null;
      return;
    }
    if (fence === null) out.push({ line, n: i + 1 });
  });
  return out;
}

/** GitHub's anchor for a heading: lower case, inline markup and punctuation dropped, spaces to hyphens. */
function slug(heading) {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // links keep their text
    .replace(/<[^>]+>/g, '')
    .replace(/[`*_~]/g, '')
    .trim()
    .toLowerCase();
  return text.replace(/[^\p{L}\p{N}\s-]/gu, '').replace(/\s/g, '-');
}

const anchorCache = new Map();
/** The anchors of a Markdown file: its headings' slugs (numbered when repeated) and explicit `id`/`name` attributes. */
function anchors(file) {
  let set = anchorCache.get(file);
  if (set) return set;
  set = new Set();
  const counts = new Map();
  for (const { line } of proseLines(readFileSync(file, 'utf8'))) {
    const h = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (h) {
      const base = slug(h[1]);
      const k = counts.get(base) ?? 0;
      counts.set(base, k + 1);
      set.add(k === 0 ? base : `${base}-${k}`);
    }
    for (const m of line.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) set.add(m[1]);
  }
  anchorCache.set(file, set);
  return set;
}

/** Link targets of a line: inline links and images `[text](target "title")`, and reference definitions `[x]: target`. */
function targets(line) {
  const out = [];
  const inline = line.replace(/`[^`]*`/g, (s) => ' '.repeat(s.length)); // no links inside code spans
  for (const m of inline.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) out.push(m[1]);
  const ref = /^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$/.exec(inline);
  if (ref) out.push(ref[1]);
  return out;
}

/** Markdown files named in prose or code spans (not in links, which `targets` checks). */
function mentions(line) {
  const bare = line.replace(/\]\([^)]*\)/g, '](');
  return [...bare.matchAll(/(?<![\w./:-])((?:\.{1,2}\/)?[\w-]+(?:\/[\w.-]+)*\.md)\b/g)].map((m) => m[1]);
}

function inRepo(p) {
  const rel = relative(root, p);
  return rel !== '..' && !rel.startsWith(`..${sep}`) && !rel.startsWith('/');
}

/** Problems in one Markdown file, as `file:line: message`. */
export function checkFile(file) {
  const problems = [];
  const dir = dirname(file);
  const name = relative(root, file);
  for (const { line, n } of proseLines(readFileSync(file, 'utf8'))) {
    for (const t of targets(line)) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(t)) continue; // http:, https:, mailto: ...
      const hash = t.indexOf('#');
      const pathPart = decodeURIComponent(hash < 0 ? t : t.slice(0, hash));
      const anchor = hash < 0 ? null : decodeURIComponent(t.slice(hash + 1));
      const target = pathPart === '' ? file : resolve(dir, pathPart);
      if (!inRepo(target)) {
        problems.push(`${name}:${n}: link ${t} leaves the repository`);
        continue;
      }
      if (!existsSync(target)) {
        problems.push(`${name}:${n}: link ${t}: ${relative(root, target)} does not exist`);
        continue;
      }
      if (anchor !== null && anchor !== '') {
        if (!target.endsWith('.md') || statSync(target).isDirectory()) continue; // line anchors (#L10) of source files are not checked
        if (!anchors(target).has(anchor)) problems.push(`${name}:${n}: link ${t}: no heading #${anchor} in ${relative(root, target)}`);
      }
    }
    for (const m of mentions(line)) {
      const candidates = [resolve(dir, m), resolve(root, m), resolve(root, 'docs', m)];
      if (!candidates.some((c) => inRepo(c) && existsSync(c))) problems.push(`${name}:${n}: names ${m}, which is not in the repository`);
    }
  }
  return problems;
}

function defaultFiles() {
  const docs = join(root, 'docs');
  const files = [join(root, 'README.md')];
  if (existsSync(docs)) for (const f of readdirSync(docs).sort()) if (f.endsWith('.md')) files.push(join(docs, f));
  return files;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const files = process.argv.length > 2 ? process.argv.slice(2).map((f) => resolve(f)) : defaultFiles();
  const problems = files.flatMap(checkFile);
  for (const p of problems) console.error(p);
  console.log(`check-links: ${files.length} files, ${problems.length} broken link${problems.length === 1 ? '' : 's'}`);
  process.exit(problems.length === 0 ? 0 : 1);
}
