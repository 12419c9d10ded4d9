// The numpy (and Python number) pieces the runtime port needs, each matching numpy exactly where
// a threshold could land on the other side: linear-interpolation percentiles, round half to even,
// truncating int(), floor division, first-index argmax. Arrays are plain or typed arrays.

// Python's int(x): truncation toward zero.
export function int(x) {
  return Math.trunc(x);
}

// Python's a // b (floor division, numbers).
export function floorDiv(a, b) {
  return Math.floor(a / b);
}

// Python's a % b (the sign of b).
export function mod(a, b) {
  const r = a % b;
  return r !== 0 && (r < 0) !== (b < 0) ? r + b : r;
}

// np.round(x) / np.rint / Python's round(x) with no digits: round half to even.
export function round(x) {
  if (Math.abs(x % 1) === 0.5) return 2 * Math.round(x / 2);
  return Math.round(x);
}

// Python's round(x, n) for floats: correctly rounded from x's exact binary value, ties (exact
// halves only) to even. toFixed rounds the exact value too, but ties away from zero.
export function roundTo(x, n) {
  if (!Number.isFinite(x)) return x;
  const exact = Math.abs(x).toFixed(100);            // every digit of a double that matters here
  const dot = exact.indexOf(".");
  const rest = exact.slice(dot + 1 + n);
  if (/^50*$/.test(rest)) {                          // an exact tie: to the even last digit
    const kept = exact.slice(0, dot + 1 + n).replace(/\.$/, "");
    const last = Number(kept[kept.length - 1]);
    const down = Number(kept);
    const up = Number((Math.abs(x) + 0.5 * 10 ** -n).toFixed(n));
    return Math.sign(x) * (last % 2 === 0 ? down : up);
  }
  return Number(x.toFixed(n));
}

// np.round(x, decimals): rint(x * 10**d) / 10**d, numpy's own (not Python's) rounding.
export function npRound(x, decimals = 0) {
  if (decimals === 0) return round(x);
  const f = 10 ** decimals;
  return round(x * f) / f;
}

// np.clip for one number.
export function clip(x, lo, hi) {
  return Math.min(Math.max(x, lo), hi);
}

// Sum in float64 (numpy's pairwise summation differs from this only in the last bits).
export function sum(a) {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return s;
}

// np.mean (float64).
export function mean(a) {
  return sum(a) / a.length;
}

// Ascending numeric copy as a Float64Array (a typed sort compares numbers, not strings).
function sortedNumbers(a) {
  return Float64Array.from(a).sort();
}

// np.median: the middle value, or the mean of the two middle values.
export function median(a) {
  const n = a.length;
  if (n === 0) return NaN;
  const s = sortedNumbers(a);
  const h = n >> 1;
  return n % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

// np.percentile(a, q) with the default "linear" method, computed as numpy does it (virtual index
// q/100 * (n-1), then a lerp that is exact at both ends).
export function percentile(a, q) {
  const n = a.length;
  if (n === 0) return NaN;
  const s = sortedNumbers(a);
  const virtual = (q / 100) * (n - 1);
  const lo = Math.floor(virtual);
  const hi = Math.min(lo + 1, n - 1);
  const t = virtual - lo;
  const x = s[lo], y = s[hi];
  const diff = y - x;
  return t >= 0.5 ? y - diff * (1 - t) : x + diff * t;
}

// np.argmax: the first index of the largest value (NaN ignored).
export function argmax(a) {
  let best = -1;
  for (let i = 0; i < a.length; i++) if (best < 0 || a[i] > a[best]) best = i;
  return best;
}

// np.argmin: the first index of the smallest value.
export function argmin(a) {
  let best = -1;
  for (let i = 0; i < a.length; i++) if (best < 0 || a[i] < a[best]) best = i;
  return best;
}

// Python's max(items, key=f) / min(...): the first item with the largest (smallest) key.
export function maxBy(items, key) {
  let best = null, bestKey = -Infinity;
  for (const item of items) {
    const k = key(item);
    if (best === null || k > bestKey) { best = item; bestKey = k; }
  }
  return best;
}

export function minBy(items, key) {
  let best = null, bestKey = Infinity;
  for (const item of items) {
    const k = key(item);
    if (best === null || k < bestKey) { best = item; bestKey = k; }
  }
  return best;
}

// Python's sorted(items, key=f) (stable; keys compared as numbers, or as arrays of numbers
// element by element like Python tuples).
export function sorted(items, key = (x) => x, reverse = false) {
  const keyed = Array.from(items, (item, i) => [key(item), i, item]);
  const cmp = (a, b) => {
    if (Array.isArray(a)) {
      for (let i = 0; i < Math.min(a.length, b.length); i++) {
        const c = cmp(a[i], b[i]);
        if (c) return c;
      }
      return a.length - b.length;
    }
    return a < b ? -1 : a > b ? 1 : 0;
  };
  keyed.sort((p, q) => (reverse ? cmp(q[0], p[0]) : cmp(p[0], q[0])) || p[1] - q[1]);
  return keyed.map((p) => p[2]);
}

// np.argsort(a, kind="stable").
export function argsort(a) {
  return Array.from(a, (_, i) => i).sort((i, j) => (a[i] < a[j] ? -1 : a[i] > a[j] ? 1 : i - j));
}

// np.cumsum (float64).
export function cumsum(a) {
  const out = new Float64Array(a.length);
  let s = 0;
  for (let i = 0; i < a.length; i++) out[i] = s += a[i];
  return out;
}

// np.searchsorted(sorted, v) (side="left"): the first index i with sorted[i] >= v.
export function searchsorted(a, v) {
  let lo = 0, hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid] < v) lo = mid + 1; else hi = mid;
  }
  return lo;
}

// np.searchsorted(sorted, v, side="right"): the first index i with sorted[i] > v.
export function searchsortedRight(a, v) {
  let lo = 0, hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid] <= v) lo = mid + 1; else hi = mid;
  }
  return lo;
}

// np.linalg.norm of a 2-vector (numpy: sqrt(x*x + y*y), not hypot).
export function norm2(x, y) {
  return Math.sqrt(x * x + y * y);
}

// 3x3 matrices as arrays of 9 numbers, row-major: a @ b.
export function matmul3(a, b) {
  const out = new Array(9).fill(0);
  for (let r = 0; r < 3; r++)
    for (let c = 0; c < 3; c++)
      out[3 * r + c] = a[3 * r] * b[c] + a[3 * r + 1] * b[3 + c] + a[3 * r + 2] * b[6 + c];
  return out;
}

// np.linalg.inv of a 3x3 (row-major 9 numbers); cofactors (LAPACK's LU differs in the last bits).
export function inv3(m) {
  const [a, b, c, d, e, f, g, h, i] = m;
  const A = e * i - f * h, B = -(d * i - f * g), C = d * h - e * g;
  const det = a * A + b * B + c * C;
  return [A / det, -(b * i - c * h) / det, (b * f - c * e) / det,
    B / det, (a * i - c * g) / det, -(a * f - c * d) / det,
    C / det, -(a * h - b * g) / det, (a * e - b * d) / det];
}

// np.eye(3) / np.diag([sx, sy, 1]) as row-major 9 numbers.
export function diag3(sx, sy, s = 1) {
  return [sx, 0, 0, 0, sy, 0, 0, 0, s];
}
