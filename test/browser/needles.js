// Shared by the test pages (page.js, sockets-page.js): how often byte strings occur in what a page received.

/** How many times each needle (hex) occurs in the datagrams `received`, by needle. */
export function countNeedles(received, needles) {
  const hits = {};
  for (const hex of needles) {
    const n = Uint8Array.from(hex.match(/../g), (h) => parseInt(h, 16));
    let count = 0;
    for (const d of received) {
      outer: for (let i = 0; i + n.length <= d.length; i++) {
        for (let j = 0; j < n.length; j++) if (d[i + j] !== n[j]) continue outer;
        count++;
      }
    }
    hits[hex] = count;
  }
  return hits;
}
