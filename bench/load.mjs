// Imports a contender's package as seen from bench/: from bench/node_modules, never from netlane's own.
export function load(name) {
  return import(name);
}
