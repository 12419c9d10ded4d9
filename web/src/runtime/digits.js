// From blobs to digits: runtime/digits.py, function by function, in the same order (see its module
// doc). `opt` is page.js's options with the Python field names (split, match_stroke, reject,
// keep_all, low_confidence, line_gap).
//
// Small images here (a blob's ink, a piece of it) are {h, w, data: Float32Array} (row-major, the
// float32 numpy arrays of digits.py); they become a cv.Mat only to be normalised. The page-sized
// ones are ink.js's: `ink.labels` (CV_32SC1) and `ink.flat` (CV_8UC1).
// Where digits.py computes in float32 (the ink, the classifier's probabilities, the scores), so
// does this (Math.fround), and a Python float compared with a float32 value is compared as float32,
// as numpy 2 does it.
// `classifyBlobs` is async (the recognizer's predict is). `toDigits` / `toMarks` take `toInput`
// (page pixels -> input image pixels: [[x, y], ...] -> [[x, y], ...], float32 values as Python's)
// and the input image only for its size ({rows, cols}, a cv.Mat will do); a Digit's `crop` is
// left null (cut it from the image with `box` where needed: no Mat to leak).

import { cv } from "./cv.js";
import { TUNING } from "./tuning.js";
import { normalizeDigit } from "./normalize.js";
import { Rules } from "./rules.js";
import { int, median, percentile, round, sorted } from "./np.js";

const T = TUNING["digits"];
const f32 = Math.fround;

// One digit read on the page. `box` is [x, y, w, h] in the input image's pixels.
export class Digit {
  constructor(box, line, label, prob, low_confidence, crop28, crop = null, cell = null) {
    Object.assign(this, { box, line, label, prob, low_confidence, crop28, crop, cell });
  }
}

// Something on the page that is not a handwritten digit, and why (see Mark in digits.py).
export class Mark {
  constructor(box, kind) {
    this.box = box;
    this.kind = kind;
  }
}

// --- lines --------------------------------------------------------------------------------------

// Blobs chained left to right, where their bodies start and how tall they are, and the row of a
// table or grid they fill (the band between two rules), if any.
export class Line {
  constructor(blobs, top = 0.0, height = 0.0, band = null) {
    Object.assign(this, { blobs, top, height, band });
  }

  measure() {
    // the height of the line's tall-but-ordinary digits: small 0s and long tails are outliers
    this.height = percentile(this.blobs.map((b) => b.h), 60);
    this.top = median(this.blobs.map((b) => b.y0));
    return this;
  }
}

// A blob's height on the page: the middle of its top part (tails of 7s, 9s, 4s hang below).
export function coreY(b, height) {
  return b.y0 + Math.min(b.h, height) / 2;
}

const key = (pair) => (pair ? pair.join(",") : "");

// Lines in reading order: top to bottom, and left block before right block in a row.
export function groupLines(blobs, geom, lineGap, rules = null) {
  const H = geom.height;
  const [rows, columns] = rules && rules.truthy() ? [rules.rows, rules.columns] : [[], []];
  const banded = new Map(), free = [];             // band key -> [band, blobs]
  for (const b of blobs) {
    const band = rowBand(b, rows, H);
    if (band) {
      const cx = (b.x0 + b.x1) / 2, cy = (b.y0 + b.y1) / 2;
      const column = Rules.between(columns, cy, cx);
      b.cell = [band, column ? [round(column[0]), round(column[1])] : null];
      if (!banded.has(key(band))) banded.set(key(band), [band, []]);
      banded.get(key(band))[1].push(b);
    } else {
      free.push(b);
    }
  }
  const chains = [], levels = [];                  // blobs of each line, their core heights
  for (const b of sorted(free, (b) => b.x0)) {
    const y = coreY(b, H);
    let best = null, dist = 0.6 * H;
    for (let n = 0; n < chains.length; n++) {
      const ln = chains[n], ys = levels[n].slice(-3);
      let s = 0;
      for (const v of ys) s += v;
      const d = Math.abs(s / ys.length - y);
      if (d < dist && (b.x0 - ln[ln.length - 1].x1 <= lineGap * H || ruledGap(ln[ln.length - 1], b, columns))) {
        best = n;
        dist = d;
      }
    }
    if (best === null) {
      chains.push([b]);
      levels.push([y]);
    } else {
      chains[best].push(b);
      levels[best].push(y);
    }
  }
  let lines = chains.map((ln) => new Line(ln).measure());
  for (const [band, bs] of banded.values()) lines.push(new Line(sorted(bs, (b) => b.x0), 0.0, 0.0, band).measure());
  lines = sorted(lines, (ln) => ln.top + ln.height / 2);
  const sideBySide = [];                           // lines side by side at the same height
  for (const ln of lines) {
    const mid = ln.top + ln.height / 2;
    const last = sideBySide[sideBySide.length - 1];
    if (last && Math.abs(last[0] - mid) < 0.6 * H) last[1].push(ln);
    else sideBySide.push([mid, [ln]]);
  }
  return sideBySide.flatMap(([, row]) => sorted(row, (ln) => ln.blobs[0].x0));
}

// Whether a vertical rule (of `columns`) runs between blobs a and b (left to right) across both.
export function ruledGap(a, b, columns) {
  const top = Math.min(a.y0, b.y0), bottom = Math.max(a.y1, b.y1);
  return columns.some((r) => a.x1 <= r.at && r.at <= b.x0 && r.start <= top && r.end >= bottom);
}

// [top, bottom] of the band between the rules above and below a blob holding one line, or null.
export function rowBand(b, rows, height) {
  if (!rows.length) return null;
  const cx = (b.x0 + b.x1) / 2, cy = (b.y0 + b.y1) / 2;
  const band = Rules.between(rows, cx, cy);
  if (band === null || !(0.8 * height <= band[1] - band[0] && band[1] - band[0] <= 2.5 * height)) return null;
  return [round(band[0]), round(band[1])];
}

// --- classification -----------------------------------------------------------------------------

// A classified piece of the page (page pixels); compared by identity, as in Python.
export class Read {
  constructor(x0, y0, x1, y1, probs, crop28, line, odd = false, cell = null, darkness = 0.0) {
    Object.assign(this, { x0, y0, x1, y1, probs, crop28, line, odd, cell, darkness });
  }
}

const FAINT = T["FAINT"];  // ink lighter than this share of a blob's darkest is not its own
const SPLIT_COST = T["SPLIT_COST"];  // each extra piece must buy at least this much log-probability
const STACKED = T["STACKED"];  // a mark this many times as tall as its line may reach into another line

// Which of a model's outputs are digits (an 11-class model's last one, "none", is not).
export function digitColumns(labels) {
  return labels.map((label) => /^[0-9]+$/.test(label));
}

// numpy's sum (pairwise: 8 partial sums from 8 elements on, halves from 128 on), each addition
// rounded by `f` (Math.fround for a float32 array).
function pairwiseSum(values, f = (x) => x, start = 0, n = values.length) {
  if (n < 8) {
    let s = f(-0.0);
    for (let i = start; i < start + n; i++) s = f(s + values[i]);
    return s;
  }
  if (n <= 128) {
    const r = [];
    for (let j = 0; j < 8; j++) r.push(f(values[start + j]));
    let i = 8;
    for (; i < n - (n % 8); i += 8) for (let j = 0; j < 8; j++) r[j] = f(r[j] + values[start + i + j]);
    let s = f(f(f(r[0] + r[1]) + f(r[2] + r[3])) + f(f(r[4] + r[5]) + f(r[6] + r[7])));
    for (; i < n; i++) s = f(s + values[start + i]);
    return s;
  }
  let half = Math.floor(n / 2);
  half -= half % 8;
  return f(pairwiseSum(values, f, start, half) + pairwiseSum(values, f, start + half, n - half));
}

const sum32 = (values) => pairwiseSum(values, f32);

// The probabilities at the columns where `which` is true (a plain array of float32 values).
function pick(probs, which, want = true) {
  const out = [];
  for (let c = 0; c < which.length; c++) if (which[c] === want) out.push(probs[c]);
  return out;
}

// The digit classes' probabilities renormalised without "none" (float32), for one row of probs.
export function asDigit(probs, digit) {
  const p = pick(probs, digit);
  const s = Math.max(sum32(p), f32(1e-9));
  return p.map((v) => f32(v / s));
}

// The blob's ink as float white-on-black in [0, 1] over its box ({h, w, data}).
// The pixels of a blob (`mask`, h x w) put back on a rule (`ruled`) that no stroke of its own
// crosses: its other ink is not within k px both above and below (or left and right). See
// digits.rule_scraps.
export function ruleScraps(mask, ruled, h, w, k) {
  const back = new Uint8Array(h * w);
  let any = false;
  for (let i = 0; i < h * w; i++) if (mask[i] && ruled[i]) { back[i] = 1; any = true; }
  if (!any) return back;
  const own = (r, c) => mask[r * w + c] && !ruled[r * w + c];
  const reach = Math.min(k, Math.max(h, w));
  for (let r = 0; r < h; r++) {
    for (let c = 0; c < w; c++) {
      const i = r * w + c;
      if (!back[i]) continue;
      let up = false, down = false, left = false, right = false;
      for (let d = 1; d < reach; d++) {
        if (!up && r - d >= 0 && own(r - d, c)) up = true;
        if (!down && r + d < h && own(r + d, c)) down = true;
        if (!left && c - d >= 0 && own(r, c - d)) left = true;
        if (!right && c + d < w && own(r, c + d)) right = true;
      }
      if ((up && down) || (left && right)) back[i] = 0;
    }
  }
  return back;
}

export function blobInk(ink, b) {
  const h = b.y1 - b.y0, w = b.x1 - b.x0;
  const L = ink.labels.data32S, F = ink.flat.data, cols = ink.labels.cols;
  const one = b.ids.length === 1 ? b.ids[0] : -1, ids = new Set(b.ids);
  const scale = f32(1.0 / Math.max(ink.paper - ink.darkest, 1.0));
  const paper = f32(ink.paper);
  const data = new Float32Array(h * w);
  const inked = new Float32Array(h * w);
  const mask = new Uint8Array(h * w);
  for (let r = 0; r < h; r++) {
    for (let c = 0; c < w; c++) {
      const at = (b.y0 + r) * cols + b.x0 + c;
      if (one >= 0 ? L[at] === one : ids.has(L[at])) mask[r * w + c] = 1;
    }
  }
  if (ink.ruled) {
    const ruled = new Uint8Array(h * w);
    for (let r = 0; r < h; r++) {
      for (let c = 0; c < w; c++) ruled[r * w + c] = ink.ruled[(b.y0 + r) * cols + b.x0 + c] ? 1 : 0;
    }
    const scraps = ruleScraps(mask, ruled, h, w, ink.bridge);
    for (let i = 0; i < h * w; i++) if (scraps[i]) mask[i] = 0;
  }
  let n = 0;
  for (let r = 0; r < h; r++) {
    for (let c = 0; c < w; c++) {
      const at = (b.y0 + r) * cols + b.x0 + c;
      if (!mask[r * w + c]) continue;
      const v = Math.min(f32(f32(paper - F[at]) * scale), 1.0);
      data[r * w + c] = v;
      inked[n++] = v;
    }
  }
  // a much fainter print that the writing touches is not part of the digit: keep what is at
  // least FAINT as dark as the blob's own ink (and its anti-aliased rim, within a pixel)
  if (n) {
    const level = f32(FAINT * percentile32(inked.subarray(0, n), 90));
    const core = new Uint8Array(h * w);
    for (let i = 0; i < h * w; i++) core[i] = data[i] >= level ? 1 : 0;
    for (let r = 0; r < h; r++) {
      for (let c = 0; c < w; c++) {
        let near = 0;                              // cv2.dilate(core, 3x3) == 0
        for (let dr = -1; dr <= 1 && !near; dr++) {
          const rr = r + dr;
          if (rr < 0 || rr >= h) continue;
          for (let dc = -1; dc <= 1; dc++) {
            const cc = c + dc;
            if (cc >= 0 && cc < w && core[rr * w + cc]) { near = 1; break; }
          }
        }
        if (!near) data[r * w + c] = 0;
      }
    }
  }
  return { h, w, data };
}

// np.percentile of float32 values, as numpy computes it for a float32 array (float32 result).
function percentile32(values, q) {
  const s = values.sort();                          // (sorts `values`, a Float32Array, in place)
  const n = s.length;
  const virtual = (q / 100) * (n - 1);
  const lo = Math.floor(virtual), hi = Math.min(lo + 1, n - 1);
  const t = virtual - lo;
  const diff = f32(s[hi] - s[lo]);
  return t >= 0.5 ? f32(s[hi] - f32(diff * f32(1 - t))) : f32(s[lo] + f32(diff * f32(t)));
}

// np.median of float32 values (the mean of the two middle ones in float32).
function median32(values) {
  const s = values.sort();                          // (sorts `values`, a Float32Array, in place)
  const n = s.length, m = n >> 1;
  return n % 2 ? s[m] : f32(f32(s[m - 1] + s[m]) / 2);
}

// The typical darkness of a mark's ink: the median over its inked pixels.
export function inkDarkness(v) {
  const inked = new Float32Array(v.data.length);
  const level = f32(0.2);
  let n = 0;
  for (const x of v.data) if (x > level) inked[n++] = x;
  return n ? median32(inked.subarray(0, n)) : 0.0;
}

// v[y0:y1, x0:x1] as a new {h, w, data}.
function sub(v, y0, y1, x0, x1) {
  const h = y1 - y0, w = x1 - x0;
  const data = new Float32Array(h * w);
  for (let r = 0; r < h; r++) data.set(v.data.subarray((y0 + r) * v.w + x0, (y0 + r) * v.w + x1), r * w);
  return { h, w, data };
}

// The ways to read a blob: as it is, and for a blob much taller than its line without the end of
// its tail. Each is [ink, x offset, y offset], trimmed to its ink.
export function variants(v, line) {
  const out = [];
  const cuts = [v.h];
  if (v.h > 1.4 * line.height) cuts.push(int(round(1.2 * line.height)));
  for (const rows of cuts) {
    const top = sub(v, 0, Math.min(rows, v.h), 0, v.w);
    const box = trim(top);
    if (box !== null) {
      const [y0, y1, x0, x1] = box;
      out.push([sub(top, y0, y1, x0, x1), x0, y0]);
    }
  }
  return out;
}

// Background pixels enclosed by ink (a Uint8Array over ink's h x w; ink a Uint8Array 0/1).
export function holes(ink, h, w) {
  const outside = new Uint8Array(h * w);          // background reachable from the border (4-conn.)
  const stack = [];
  const visit = (i) => { if (!ink[i] && !outside[i]) { outside[i] = 1; stack.push(i); } };
  for (let c = 0; c < w; c++) { visit(c); visit((h - 1) * w + c); }
  for (let r = 0; r < h; r++) { visit(r * w); visit(r * w + w - 1); }
  while (stack.length) {
    const i = stack.pop(), r = (i / w) | 0, c = i % w;
    if (r > 0) visit(i - w);
    if (r < h - 1) visit(i + w);
    if (c > 0) visit(i - 1);
    if (c < w - 1) visit(i + 1);
  }
  const out = new Uint8Array(h * w);
  for (let i = 0; i < h * w; i++) out[i] = !ink[i] && !outside[i] ? 1 : 0;
  return out;
}

// CPython's set of small non-negative ints, for its iteration order (hash(i) = i; linear probes,
// then perturbed jumps; resized to 4x used when 3/5 full): `sorted(set, key)` breaks ties by it.
export class IntSet {
  constructor() {
    this.table = new Array(8).fill(null);
    this.fill = 0;
  }

  add(key) {
    const mask = this.table.length - 1;
    let i = key & mask, perturb = key;
    for (;;) {
      const probes = i + 9 <= mask ? 9 : 0;
      for (let j = i; j <= i + probes; j++) {
        if (this.table[j] === null) {
          this.table[j] = key;
          this.fill++;
          if (this.fill * 5 >= mask * 3) this.resize(this.fill * 4);
          return;
        }
        if (this.table[j] === key) return;
      }
      perturb = Math.floor(perturb / 32);
      i = (i * 5 + 1 + perturb) & mask;
    }
  }

  resize(minused) {
    let size = 8;
    while (size <= minused) size *= 2;
    const old = this.table;
    this.table = new Array(size).fill(null);
    const mask = size - 1;
    for (const key of old) {
      if (key === null) continue;
      let i = key & mask, perturb = key;
      for (;;) {
        if (this.table[i] === null) { this.table[i] = key; break; }
        let placed = false;
        if (i + 9 <= mask) {
          for (let j = i + 1; j <= i + 9; j++) if (this.table[j] === null) { this.table[j] = key; placed = true; break; }
        }
        if (placed) break;
        perturb = Math.floor(perturb / 32);
        i = (i * 5 + 1 + perturb) & mask;
      }
    }
  }

  values() {
    return this.table.filter((k) => k !== null);
  }
}

// Candidate x positions to cut a blob of touching digits (see cut_columns in digits.py).
export function cutColumns(v, height, most) {
  const { h, w } = v;
  const level = f32(0.3);
  const ink = new Uint8Array(h * w);
  for (let i = 0; i < h * w; i++) ink[i] = v.data[i] > level ? 1 : 0;
  const count = new Float64Array(w), top = new Float64Array(w), bottom = new Float64Array(w);
  for (let c = 0; c < w; c++) {
    let n = 0, first = -1, last = -1;
    for (let r = 0; r < h; r++) {
      if (ink[r * w + c]) {
        n++;
        if (first < 0) first = r;
        last = r;
      }
    }
    count[c] = n;
    top[c] = n > 0 ? first : h;
    bottom[c] = n > 0 ? last : -1;
  }
  const hole = holes(ink, h, w);
  const throughHole = new Uint8Array(w);
  for (let i = 0; i < h * w; i++) if (hole[i]) throughHole[i % w] = 1;
  const margin = Math.max(2, int(0.15 * height));
  const cands = new IntSet();
  const k = 1 / 3;
  for (const signal of [count, top.map((t) => -t), bottom]) {
    // np.convolve(signal, ones(3) / 3, mode="same"), inside (the ends are never looked at)
    const s = (c) => (signal[c - 1] * k + signal[c] * k) + signal[c + 1] * k;
    for (let c = margin; c < w - margin; c++) {
      const sc = s(c);
      if (sc <= s(c - 1) && sc <= s(c + 1) && !throughHole[c]) cands.add(c);
    }
  }
  const chosen = [];
  for (const c of sorted(cands.values(), (c) => count[c])) {
    if (chosen.every((o) => Math.abs(c - o) >= margin)) chosen.push(c);
    if (chosen.length === most) break;
  }
  return chosen.sort((a, b) => a - b);
}

// Bounding rows/cols of the ink in v: [y0, y1, x0, x1] or null.
export function trim(v) {
  const level = f32(0.05);
  let y0 = Infinity, y1 = -1, x0 = Infinity, x1 = -1;
  for (let r = 0; r < v.h; r++) {
    for (let c = 0; c < v.w; c++) {
      if (v.data[r * v.w + c] > level) {
        if (r < y0) y0 = r;
        y1 = r;
        if (c < x0) x0 = c;
        if (c > x1) x1 = c;
      }
    }
  }
  return y1 < 0 ? null : [y0, y1 + 1, x0, x1 + 1];
}

// Areas of the 8-connected components of a 0/1 Uint8Array (h x w).
function componentAreas(ink, h, w) {
  const seen = new Uint8Array(h * w), stack = new Int32Array(h * w), areas = [];
  for (let start = 0; start < h * w; start++) {
    if (!ink[start] || seen[start]) continue;
    let area = 0, top = 0;
    stack[top++] = start;
    seen[start] = 1;
    while (top) {
      const i = stack[--top], r = (i / w) | 0, c = i - r * w;
      area++;
      const r0 = r > 0 ? -1 : 0, r1 = r < h - 1 ? 1 : 0, c0 = c > 0 ? -1 : 0, c1 = c < w - 1 ? 1 : 0;
      for (let dr = r0; dr <= r1; dr++) {
        for (let dc = c0; dc <= c1; dc++) {
          const j = i + dr * w + dc;
          if (ink[j] && !seen[j]) { seen[j] = 1; stack[top++] = j; }
        }
      }
    }
    areas.push(area);
  }
  return areas;
}

// Negative log-prior of some ink being one digit (see shape_cost in digits.py).
export function shapeCost(v, line, width, piece = false) {
  const { h, w } = v;
  let cost = 2.5 * Math.max(0.0, w / width - 1.6);
  if (Math.max(w, h) < 0.35 * line.height) cost += 2.0;
  if (piece) {
    const level = f32(0.3);
    const ink = new Uint8Array(h * w);
    let total = 0;
    for (let i = 0; i < h * w; i++) if (v.data[i] > level) { ink[i] = 1; total++; }
    const big = componentAreas(ink, h, w).filter((a) => a >= Math.max(4, 0.02 * total)).length;
    cost += 1.0 * Math.max(0, big - 1);
  }
  return cost;
}

// normalize_digit(v, ink="white") of a {h, w, data}.
// Marks narrower than NARROW of their height read as an unsure 1, read again stretched to WIDENED
// of it; the wider reading replaces the first where the model is surer of it (see widen_unsure_ones).
async function widenUnsureOnes(options, best, bestScore, probs, crops, digit, recognizer, opt, budget) {
  const labels = recognizer.labels;
  const again = [];
  for (const [k, j] of best) {
    const v = options[j][1];
    if (v.w < NARROW * v.h && unsureOne(probs[j], labels, NARROW_SURE)) {
      again.push([k, j, stretched(v, int(round(WIDENED * v.h)))]);
    }
  }
  if (!again.length) return;
  if (budget !== null) budget.take(again.length);
  const wide = again.map(([, , v]) => normalized(v, opt));
  const C = labels.length;
  const all = await recognizer.predict(stack(wide));
  again.forEach(([k, j], n) => {
    const p = all.slice(n * C, (n + 1) * C);
    const logp = (q) => f32(Math.log(f32(maxOf(asDigit(q, digit)) + f32(1e-6))));
    const gain = f32(logp(p) - logp(probs[j]));
    if (gain > 0) {
      probs[j] = p;
      crops[j] = wide[n];
      bestScore.set(k, f32(bestScore.get(k) + gain));
    }
  });
}

// A blob's ink ({h, w, data}) resized to width w (cv2.INTER_LINEAR, float32).
function stretched(v, w) {
  const m = new cv.Mat(v.h, v.w, cv.CV_32FC1), out = new cv.Mat();
  try {
    m.data32F.set(v.data);
    cv.resize(m, out, new cv.Size(w, v.h), 0, 0, cv.INTER_LINEAR);
    return { h: v.h, w, data: Float32Array.from(out.data32F) };
  } finally {
    m.delete();
    out.delete();
  }
}

function normalized(v, opt) {
  const m = new cv.Mat(v.h, v.w, cv.CV_32FC1);
  try {
    m.data32F.set(v.data);
    return normalizeDigit(cv, m, "white", opt.match_stroke);
  } finally {
    m.delete();
  }
}

function stack(crops) {
  const out = new Float32Array(crops.length * 784);
  crops.forEach((c, i) => out.set(c, i * 784));
  return out;
}

const maxOf = (values) => values.reduce((m, v) => (v > m ? v : m), -Infinity);

// Raised when a page's marks would take more crops to classify than its budget allows.
export class TooManyCrops extends Error {
  constructor() {
    super("too many crops to classify: noise");
    this.name = "TooManyCrops";
  }
}

// How many more crops a page may classify (page.NOISE): `take(n)` before n are classified.
export class CropBudget {
  constructor(crops) {
    this.left = crops;
  }

  take(n) {
    if (n > this.left) throw new TooManyCrops();
    this.left -= n;
  }
}

// Classify every blob in one batch; cut wide ones where the classifier reads the pieces best.
// The crops (blobs and their variants, then the pieces) are taken from `budget` (a CropBudget)
// before they are classified: TooManyCrops past it.
export async function classifyBlobs(lines, ink, geom, recognizer, opt, budget = null) {
  const items = [];
  lines.forEach((ln, i) => { for (const b of ln.blobs) items.push([i, b]); });
  if (!items.length) return [];
  // typical width of a digit (ignoring 1s): the yardstick for "too wide to be one digit"
  const widths = items.filter(([i, b]) => b.w > 0.35 * Math.min(b.h, 2 * lines[i].height)).map(([, b]) => b.w);
  const width = widths.length ? median(widths) : geom.height * 0.6;
  // every blob (and its tail-less variant) classified in one batch; the likelier reading wins
  const options = [], crops = [];
  items.forEach(([i, b], k) => {
    for (const [v, dx, dy] of variants(blobInk(ink, b), lines[i])) {
      options.push([k, v, b.x0 + dx, b.y0 + dy]);
      crops.push(normalized(v, opt));
    }
  });
  if (!crops.length) return [];
  if (budget !== null) budget.take(crops.length);
  const C = recognizer.labels.length;
  const all = await recognizer.predict(stack(crops));
  const probs = crops.map((_, j) => all.slice(j * C, (j + 1) * C));
  const digit = digitColumns(recognizer.labels);
  const best = new Map(), bestScore = new Map();
  options.forEach(([k, v], j) => {
    const logp = f32(Math.log(f32(maxOf(asDigit(probs[j], digit)) + f32(1e-6))));
    const score = f32(logp - f32(shapeCost(v, lines[items[k][0]], width)));
    if (!best.has(k) || score > bestScore.get(k)) {
      best.set(k, j);
      bestScore.set(k, score);
    }
  });
  await widenUnsureOnes(options, best, bestScore, probs, crops, digit, recognizer, opt, budget);
  const reads = [];
  const pieces = [], plans = [], stacked = [];
  const first = new Map();                    // each blob's first option: its whole ink
  options.forEach(([k], j) => { if (!first.has(k)) first.set(k, j); });
  items.forEach(([i, b], k) => {
    if (!best.has(k)) {
      reads.push([]);
      return;
    }
    const j = best.get(k);
    const [, v, x0, y0] = options[j];
    const ln = lines[i];
    const { h, w } = v;
    const whole = new Read(x0, y0, x0 + w, y0 + h, probs[j], crops[j], i, false, b.cell, inkDarkness(v));
    whole.odd = (b.touches_edge || b.clutter > 0.005 || Math.max(w, h) < 0.45 * ln.height
                 || w > 1.6 * Math.max(h, ln.height));
    reads.push([whole]);
    const [, fv, fx, fy] = options[first.get(k)];
    const other = lineAcross(fx, fy, fx + fv.w, fy + fv.h, lines, i);
    if (opt.split && other !== null) {       // two lines' digits touching: cut across, not down
      const [upper, lower] = lines[other].top < lines[i].top ? [other, i] : [i, other];
      stacked.push([k, upper, lower, fv, fx, fy]);
      return;
    }
    // wide blobs may be touching digits (a confident read of a moderately wide one is kept)
    if (!opt.split || w < 1.15 * width || (w < 1.6 * width && maxOf(asDigit(whole.probs, digit)) > f32(0.9))) return;
    const most = Math.min(12, int(1.5 * w / width) + 1);
    const xs = [0, ...cutColumns(v, ln.height, most), w];
    const segs = new Map();
    for (let s = 0; s < xs.length; s++) {
      for (let e = s + 1; e < xs.length; e++) {
        if ((s === 0 && e === xs.length - 1) || xs[e] - xs[s] > 1.7 * width) continue;
        const box = trim(sub(v, 0, h, xs[s], xs[e]));
        if (box !== null) {
          const [py0, py1, px0, px1] = box;
          segs.set(`${s},${e}`, pieces.length);
          pieces.push([k, x0 + xs[s] + px0, y0 + py0, x0 + xs[s] + px1, y0 + py1,
            sub(v, py0, py1, xs[s] + px0, xs[s] + px1)]);
        }
      }
    }
    if (segs.size) plans.push([k, xs, segs]);
  });
  if (budget !== null) budget.take(pieces.length);
  if (pieces.length) {
    const pcrops = pieces.map((p) => normalized(p[5], opt));
    const pall = await recognizer.predict(stack(pcrops));
    const pprobs = pcrops.map((_, j) => pall.slice(j * C, (j + 1) * C));
    const pdigit = pprobs.map((p) => asDigit(p, digit));
    for (const [k, xs, segs] of plans) {
      const i = items[k][0], whole = reads[k][0];
      const path = bestPath(xs.length, segs, pieces, pdigit, lines[i], width, bestScore.get(k));
      if (path) {
        reads[k] = path.map((j) => new Read(...pieces[j].slice(1, 5), pprobs[j], pcrops[j], i, false, whole.cell,
                                            inkDarkness(pieces[j][5])));
      }
    }
  }
  if (stacked.length) await cutAcrossLines(stacked, items, reads, bestScore, lines, width, recognizer, opt, budget);
  return reads.flat();
}

// The other line whose digits a tall mark of line i reaches into, or null (see line_across).
export function lineAcross(x0, y0, x1, y1, lines, i) {
  const ln = lines[i];
  if (y1 - y0 < STACKED * ln.height) return null;
  let found = null;
  lines.forEach((o, j) => {
    const left = Math.min(...o.blobs.map((b) => b.x0)), right = Math.max(...o.blobs.map((b) => b.x1));
    if (j !== i && Math.min(y1, o.top + o.height) - Math.max(y0, o.top) >= 0.5 * o.height
        && left - o.height < (x0 + x1) / 2 && (x0 + x1) / 2 < right + o.height
        && (found === null || Math.abs(o.top - ln.top) < Math.abs(lines[found].top - ln.top))) found = j;
  });
  return found;
}

// Cut each stacked mark [item, upper line, lower line, ink, x0, y0] in two across, near where
// the lower line starts, where each piece reads as a digit as surely as the whole (see
// cut_across_lines).
async function cutAcrossLines(stacked, items, reads, bestScore, lines, width, recognizer, opt, budget) {
  const cands = [];
  for (const [k, upper, lower, v, x0, y0] of stacked) {
    for (const f of [-0.3, -0.15, 0.0, 0.15, 0.3]) {
      const c = int(round(lines[lower].top + f * lines[lower].height - y0));
      if (!(0 < c && c < v.h)) continue;
      const top = trim(sub(v, 0, c, 0, v.w)), bottom = trim(sub(v, c, v.h, 0, v.w));
      if (top === null || bottom === null) continue;
      const th = top[1] - top[0], bh = bottom[1] - bottom[0], bw = bottom[3] - bottom[2];
      if (th < 0.5 * lines[upper].height || bh < 0.5 * lines[lower].height || bw < 0.35 * bh) continue;
      const [ty0, ty1, tx0, tx1] = top, [by0, by1, bx0, bx1] = bottom;
      cands.push([k, upper, lower, [x0 + tx0, y0 + ty0, sub(v, ty0, ty1, tx0, tx1)],
        [x0 + bx0, y0 + c + by0, sub(v, c + by0, c + by1, bx0, bx1)]]);
    }
  }
  if (!cands.length) return;
  if (budget !== null) budget.take(2 * cands.length);
  const crops = cands.flatMap((c) => [normalized(c[3][2], opt), normalized(c[4][2], opt)]);
  const C = recognizer.labels.length;
  const all = await recognizer.predict(stack(crops));
  const probs = crops.map((_, j) => all.slice(j * C, (j + 1) * C));
  const digit = digitColumns(recognizer.labels);
  const chosen = new Map();
  cands.forEach(([k, upper, lower, top, bottom], n) => {
    const lt = f32(Math.log(f32(maxOf(asDigit(probs[2 * n], digit)) + f32(1e-6))));
    const lb = f32(Math.log(f32(maxOf(asDigit(probs[2 * n + 1], digit)) + f32(1e-6))));
    const score = Math.min(f32(lt - f32(shapeCost(top[2], lines[upper], width))),
                           f32(lb - f32(shapeCost(bottom[2], lines[lower], width))));
    if (score > bestScore.get(k) && (!chosen.has(k) || score > chosen.get(k)[0])) chosen.set(k, [score, n]);
  });
  for (const [k, [, n]] of chosen) {
    const [, upper, lower, top, bottom] = cands[n];
    const i = items[k][0], whole = reads[k][0];
    reads[k] = [[top, upper], [bottom, lower]].map(([[x, y, p], line], m) =>
      new Read(x, y, x + p.w, y + p.h, probs[2 * n + m], crops[2 * n + m], line, false,
               pieceCell(whole.cell, lines, i, line), inkDarkness(p)));
  }
}

// The cell of a piece cut across from a mark of line i, put in `line` (see piece_cell).
export function pieceCell(cell, lines, i, line) {
  if (line === i) return cell;
  if (cell === null || lines[line].band === null) return null;
  return [lines[line].band, cell[1]];
}

// Pieces (indices) of the best cut through n cut positions, or null if the whole blob wins.
// segs: a Map "s,e" -> piece index; probs: each piece's as_digit row.
export function bestPath(n, segs, pieces, probs, line, width, wholeScore) {
  const score = new Float64Array(n).fill(-Infinity);
  const back = new Array(n).fill(null);
  score[0] = 0.0;
  for (let e = 1; e < n; e++) {
    for (let s = 0; s < e; s++) {
      const k = segs.get(`${s},${e}`);
      if (k === undefined || score[s] === -Infinity) continue;
      const logp = f32(Math.log(f32(maxOf(probs[k]) + f32(1e-6))));
      const val = score[s] + logp - SPLIT_COST - shapeCost(pieces[k][5], line, width, true);
      if (val > score[e]) {
        score[e] = val;
        back[e] = [s, k];
      }
    }
  }
  if (score[n - 1] <= f32(wholeScore - f32(SPLIT_COST))) return null;
  const path = [];
  let e = n - 1;
  while (e > 0) {
    const [s, k] = back[e];
    path.push(k);
    e = s;
  }
  return path.reverse();
}

// The index of the likeliest digit label (an 11-class model's "none" left out).
export function bestDigit(probs, labels) {
  const digit = digitColumns(labels);
  let best = -1;
  for (let c = 0; c < digit.length; c++) if (digit[c] && (best < 0 || probs[c] > probs[best])) best = c;
  return best;
}

// A 28x28 crop (784 floats) moved one pixel right, left, down and up, written as four crops into
// `out` from `at` (zeros fill the edge; see pixel_shifts).
export function pixelShifts(crop, out, at) {
  for (let y = 0; y < 28; y++) {
    for (let x = 0; x < 28; x++) {
      const v = crop[y * 28 + x];
      if (x < 27) out[at + y * 28 + x + 1] = v;
      if (x > 0) out[at + 784 + y * 28 + x - 1] = v;
      if (y < 27) out[at + 2 * 784 + (y + 1) * 28 + x] = v;
      if (y > 0) out[at + 3 * 784 + (y - 1) * 28 + x] = v;
    }
  }
}

// The marks near a decision read once more, moved by a pixel each way; each keeps the mean of its
// five readings (see steady_reads). Nothing when the page's crop budget is short.
export async function steadyReads(reads, recognizer, opt, budget) {
  const digit = digitColumns(recognizer.labels);
  const near = reads.filter((r) => {
    const none = sum32(pick(r.probs, digit, false)), top = maxOf(pick(r.probs, digit));
    return (f32(0.5) < none && none < f32(SURE_NONE)) || (f32(opt.reject) < top && top < f32(0.5));
  });
  if (!near.length || 4 * near.length > budget.left) return;
  budget.take(4 * near.length);
  const crops = new Float32Array(near.length * 4 * 784);
  near.forEach((r, i) => pixelShifts(r.crop28, crops, i * 4 * 784));
  const probs = await recognizer.predict(crops);
  const c = recognizer.labels.length;
  near.forEach((r, i) => {
    const mean = new Float32Array(c);
    for (let j = 0; j < c; j++) {
      let v = r.probs[j];
      for (let k = 0; k < 4; k++) v = f32(v + probs[(4 * i + k) * c + j]);
      mean[j] = f32(v / 5);
    }
    r.probs = mean;
  });
}

// [digits, line strings, [[read, kind], ...]]: what is not a digit set aside, each line sorted
// left to right, lines renumbered (see finish_lines in digits.py).
export function finishLines(reads, labels, opt, noneThreshold = 0.5) {
  const digit = digitColumns(labels);
  const allDigits = digit.every(Boolean);
  const none = (r) => sum32(pick(r.probs, digit, false));    // r.probs[~digit].sum()
  const top = (r) => maxOf(pick(r.probs, digit));            // r.probs[digit].max()
  const share = sureNoneShare(reads, digit);
  const clean = share < CLEAN_PAGE;              // nothing but writing: see `CLEAN_PAGE`
  if (share < PRINTED_PAGE) noneThreshold = Math.max(noneThreshold, CLEAN_NONE);
  let keep = [], rejected = [];
  for (const r of reads) {
    if (opt.keep_all) keep.push(r);
    else if (!allDigits && none(r) > f32(noneThreshold)) rejected.push([r, "none"]);
    else if ((r.odd || !(allDigits || clean)) && top(r) < f32(opt.reject)) rejected.push([r, "doubtful"]);
    else keep.push(r);
  }
  if (!(allDigits || opt.keep_all)) {             // a model that knows "none": doubtful pieces of words
    const sure = keep.filter((r) => top(r) > f32(0.9));
    const letters = rejected.filter(([r, kind]) => kind === "none" && none(r) > f32(SURE_NONE)).map(([r]) => r);
    // (beside sure digits, a mark that reads as no digit at all, under `reject`, is a letter)
    const inNumber = rejected.filter(([r, kind]) => kind === "none" && touches(r, sure, NUMBER_GAP)
      && (clean || (none(r) < f32(IN_NUMBER) && !touches(r, letters) && top(r) >= f32(opt.reject))))
      .map(([r]) => r);
    // (a mark no digit is read for, between two sure digits close on both sides, is an odd digit)
    for (const [r, kind] of rejected) {
      if (kind === "doubtful" && touches(r, sure, NUMBER_GAP) === 2) inNumber.push(r);
    }
    keep = keep.concat(inNumber);
    rejected = rejected.filter(([r]) => !inNumber.includes(r));
    const nones = rejected.filter(([, kind]) => kind === "none").map(([r]) => r);
    // a digit in a chain of letters, between two, or beside one and doubtful, is a letter
    // (on a page of nothing but writing, only the last: an unsure mark beside a word)
    const words = clean ? new Set() : wordy(keep, nones);
    const inWord = keep.filter((r) => ((words.has(r) || touches(r, nones) === 2) && !clean)
                                      || (top(r) < f32(IN_WORD) && touches(r, nones) > 0));
    inWord.push(...spreadWord(keep, inWord, top));
    const style = printStyle(nones, reads, digit);
    const table = tableReads(reads);
    const printed = printedLike(keep, style, table);
    for (const r of darkerPrint(keep, table).concat(printedStrokes(keep, style, table, labels))) {
      if (!printed.includes(r)) printed.push(r);
    }
    keep = keep.filter((r) => !inWord.includes(r) && !printed.includes(r));
    rejected = rejected.concat(inWord.map((r) => [r, "in a word"]), printed.map((r) => [r, "printed"]));
    const strokes = loneStrokes(keep, table, labels);
    keep = keep.filter((r) => !strokes.includes(r));
    rejected = rejected.concat(strokes.map((r) => [r, "stroke"]));
    if (share >= WORDY_PAGE && style === null) {                  // a page of handwritten words:
      const unsure = keep.filter((r) => top(r) < f32(opt.low_confidence));   // a digit read unsurely
      keep = keep.filter((r) => !unsure.includes(r));                      // there is a letter
      rejected = rejected.concat(unsure.map((r) => [r, "in a word"]));
    }
  }
  const byLine = new Map();
  for (const r of keep) {
    if (!byLine.has(r.line)) byLine.set(r.line, []);
    byLine.get(r.line).push(r);
  }
  const ordered = [], texts = [];
  [...byLine.keys()].sort((a, b) => a - b).forEach((i, n) => {
    const ln = sorted(byLine.get(i), (r) => (r.x0 + r.x1) / 2);
    for (const r of ln) r.line = n;
    ordered.push(...ln);
    texts.push(ln.map((r) => labels[bestDigit(r.probs, labels)]).join(""));
  });
  numberCells(ordered);
  return [ordered, texts, rejected];
}

const SURE_NONE = T["SURE_NONE"];  // "none" above this is surely not a digit (print, a letter, a sign)
const SURE_NONE_BAND = T["SURE_NONE_BAND"];  // the page's share of such marks counts those this close in part
const PRINTED_PAGE = T["PRINTED_PAGE"];  // a page where this share of the marks is surely "none" holds print or words
const CLEAN_NONE = T["CLEAN_NONE"];  // elsewhere a mark is "none" only above this probability
const CLEAN_PAGE = T["CLEAN_PAGE"];  // under this share a sheet holds nothing but writing
const WORDY_PAGE = T["WORDY_PAGE"];  // this share surely "none", none of them print: handwritten words
const IN_NUMBER = T["IN_NUMBER"];  // a mark doubtfully "none" (below this) that touches sure digits is one of them
const IN_WORD = T["IN_WORD"];  // a digit read less surely than this, touching a "none" mark, is a letter
const NUMBER_GAP = T["NUMBER_GAP"];  // a mark this close (in its heights) to a sure digit may be in its number
const PRINT_SURE = T["PRINT_SURE"];  // the print's style is read off the marks "none" above this
const NARROW = T["NARROW"];  // a mark narrower than this share of its height, read as an unsure 1, is read again
const NARROW_SURE = T["NARROW_SURE"];  // (a 1 read under this among the digits is unsure)
const WIDENED = T["WIDENED"];  // stretched to this share of its height
const LONE_ONE = T["LONE_ONE"];  // a 1 alone on its line (outside a table) read under this is a stroke
const PRINT_STROKE = T["PRINT_STROKE"];  // a 1 in a line of print read under this is one of its strokes (l, I, /)
const DARKER_PRINT = T["DARKER_PRINT"];  // in a table, digits this much darker than the rest (one height) are print

// The share of a page's marks that the classifier surely calls "none"; a mark within
// SURE_NONE_BAND of SURE_NONE counts in part (linearly, half at SURE_NONE).
export function sureNoneShare(reads, digit) {
  if (digit.every(Boolean) || !reads.length) return 1.0;
  const parts = reads.map((r) => {
    const none = sum32(pick(r.probs, digit, false));
    return Math.min(Math.max((none - SURE_NONE) / (2 * SURE_NONE_BAND) + 0.5, 0.0), 1.0);
  });
  return pairwiseSum(parts) / parts.length;        // np.mean
}

// Kept digits in a word: a chain of marks side by side holding more "none" marks than digits.
export function wordy(keep, nones) {
  const marks = sorted(keep.concat(nones), (r) => [r.line, r.x0]);
  const kept = new Set(keep);
  const out = new Set();
  let chain = [];
  for (const r of [...marks, null]) {
    if (chain.length && r !== null && touches(r, [chain[chain.length - 1]])) {
      chain.push(r);
      continue;
    }
    const digits = chain.filter((m) => kept.has(m));
    if (chain.length - digits.length > digits.length) for (const d of digits) out.add(d);
    chain = [r];
  }
  return out;
}

// The kept digits read under IN_WORD beside a letter of `inWord`, and beside those, and so on
// (see spread_word). `top(r)`: r's likeliest digit's probability.
export function spreadWord(keep, inWord, top) {
  const taken = new Set(inWord);
  let unsure = keep.filter((r) => !taken.has(r) && top(r) < f32(IN_WORD));
  let frontier = inWord;
  const more = [];
  while (frontier.length && unsure.length) {     // each mark is taken once
    frontier = unsure.filter((r) => touches(r, frontier) > 0);
    for (const r of frontier) taken.add(r);
    unsure = unsure.filter((r) => !taken.has(r));
    more.push(...frontier);
  }
  return more;
}

// On how many sides (0, 1 or 2) a mark of `others` stands right beside r on its line (a gap under
// `within` times r's height).
export function touches(r, others, within = 0.34) {
  const h = r.y1 - r.y0;
  const sides = new Set();
  for (const o of others) {
    if (o.line !== r.line || Math.min(r.y1, o.y1) - Math.max(r.y0, o.y0) < 0.3 * h) continue;
    const gap = Math.max(o.x0 - r.x1, r.x0 - o.x1);
    if (-0.5 * h < gap && gap < within * h) sides.add(o.x0 + o.x1 < r.x0 + r.x1);
  }
  return sides.size;
}

// The page's print: [its sure "none" marks, their median height, their median darkness, a Map
// {line: how many marks of that height, read as "none" above PRINT_SURE among all `reads`, it
// holds} of the lines holding two or more], or null (see print_style).
export function printStyle(nones, reads, digit) {
  const sure = nones.filter((r) => sum32(pick(r.probs, digit, false)) > f32(PRINT_SURE));
  if (sure.length < 3) return null;
  const height = median(sure.map((r) => r.y1 - r.y0));
  const alike = sure.filter((r) => Math.abs((r.y1 - r.y0) / height - 1) < 0.12);
  const perLine = new Map();
  for (const r of alike) perLine.set(r.line, (perLine.get(r.line) || 0) + 1);
  if (alike.length < Math.max(3, sure.length / 3) || Math.max(...perLine.values()) < 2) return null;
  const darkness = median(sure.map((r) => r.darkness));
  const marks = new Map();
  for (const r of reads) {
    if (sum32(pick(r.probs, digit, false)) > f32(PRINT_SURE) && Math.abs((r.y1 - r.y0) / height - 1) < 0.25) {
      marks.set(r.line, (marks.get(r.line) || 0) + 1);
    }
  }
  return [sure, height, darkness, new Map([...marks].filter(([, n]) => n >= 2))];
}

// Kept digits set in the page's print `style` (printStyle's; see printed_like in digits.py);
// outside a table, only on lines where they do not outnumber the line's print.
export function printedLike(keep, style, table) {
  if (style === null || !keep.length) return [];
  const [sure, styleH, styleD, printLines] = style;
  const fits = (r, within) => Math.abs((r.y1 - r.y0) / styleH - 1) < within;
  const tablePrint = sure.some((r) => fits(r, 0.25) && table.has(r));
  const out = keep.filter((r) => (printLines.has(r.line) || (tablePrint && table.has(r)))
                          && fits(r, 0.12) && r.darkness > styleD - 0.12);
  const digits = new Map();
  for (const r of out) if (!table.has(r)) digits.set(r.line, (digits.get(r.line) || 0) + 1);
  return out.filter((r) => table.has(r) || digits.get(r.line) <= printLines.get(r.line));
}

// Kept 1s in a line of print, outside a table, as dark as its ink, 0.6 to 1.6 times its height
// and read under PRINT_STROKE: the straight strokes of print (see printed_strokes).
export function printedStrokes(keep, style, table, labels) {
  if (style === null || !labels.includes("1")) return [];
  const [, styleH, styleD, printLines] = style;
  return keep.filter((r) => printLines.has(r.line) && !table.has(r) && unsureOne(r.probs, labels, PRINT_STROKE)
                     && 0.6 < (r.y1 - r.y0) / styleH && (r.y1 - r.y0) / styleH < 1.6
                     && r.darkness > styleD - 0.12);
}

// Whether a read's likeliest digit is a 1 (among the digits, "none" left out) read under `below`
// (see unsure_one).
export function unsureOne(probs, labels, below) {
  if (!labels.includes("1")) return false;
  const digit = digitColumns(labels);
  const p = asDigit(probs, digit);
  const one = digit.slice(0, labels.indexOf("1")).filter(Boolean).length;   // "1" among the digit columns
  let top = 0;
  for (let c = 1; c < p.length; c++) if (p[c] > p[top]) top = c;
  return top === one && p[one] < f32(below);
}

// Kept 1s alone on their line (one or two, nothing else), outside a table, read under LONE_ONE:
// an edge, a fold, a rule's end or a printed l more often than a number 1 (see lone_strokes).
export function loneStrokes(keep, table, labels) {
  if (!labels.includes("1")) return [];
  const one = labels.indexOf("1");
  const byLine = new Map();
  for (const r of keep) {
    if (!byLine.has(r.line)) byLine.set(r.line, []);
    byLine.get(r.line).push(r);
  }
  const out = [];
  for (const rs of byLine.values()) {
    if (rs.length > 2 || !rs.every((r) => bestDigit(r.probs, labels) === one)) continue;
    for (const r of rs) if (!table.has(r) && r.probs[one] < f32(LONE_ONE)) out.push(r);
  }
  return out;
}

// The reads in the cells of a table or grid of at least three columns (see table_reads).
export function tableReads(reads) {
  const cells = reads.filter((r) => r.cell && r.cell[0] && r.cell[1]);
  const columns = new Set(cells.map((r) => key(r.cell[1])));
  return new Set(columns.size >= 3 ? cells : []);
}

// Print in a table that the model reads as digits: the darker of two groups by darkness, when
// DARKER_PRINT darker on average and of one height (see darker_print).
export function darkerPrint(keep, table) {
  const cells = keep.filter((r) => table.has(r)).sort((a, b) => a.darkness - b.darkness);
  if (cells.length < 6) return [];
  const d = cells.map((r) => r.darkness);
  const n = d.length;
  let total = 0;
  for (const v of d) total += v;
  let best = -1.0, split = 0, below = 0.0, gap = 0.0;
  for (let k = 1; k < n; k++) {
    below += d[k - 1];
    const m0 = below / k, m1 = (total - below) / (n - k);
    const spread = k * (n - k) * (m1 - m0) ** 2;
    if (spread > best) [best, split, gap] = [spread, k, m1 - m0];
  }
  const dark = cells.slice(split);
  const height = median(dark.map((r) => r.y1 - r.y0));
  const alike = dark.filter((r) => Math.abs((r.y1 - r.y0) / height - 1) < 0.1);
  if (gap < DARKER_PRINT || alike.length < Math.max(3, 0.7 * dark.length)) return [];
  return alike;
}

// Each read's cell (the rules around it) replaced by [row, column] indices (column may be null).
export function numberCells(reads) {
  const cmp = (a, b) => a[0] - b[0] || a[1] - b[1];
  const unique = (pairs) => {
    const seen = new Map();
    for (const p of pairs) seen.set(key(p), p);
    return [...seen.values()].sort(cmp).map(key);
  };
  const bands = unique(reads.filter((r) => r.cell && r.cell[0]).map((r) => r.cell[0]));
  const cells = reads.map((r) => r.cell);            // the rules, before any is replaced
  reads.forEach((r, n) => {
    const cell = cells[n];
    if (!(cell && cell[0])) {
      r.cell = null;
      return;
    }
    const columns = unique(cells.filter((c) => c && c[0] && key(c[0]) === key(cell[0]) && c[1]).map((c) => c[1]));
    const column = cell[1] ? columns.indexOf(key(cell[1])) : -1;
    r.cell = [bands.indexOf(key(cell[0])), column >= 0 ? column : null];
  });
}

// [[x0, y0, x1, y1]] boxes (input pixels, clipped to the image) of page boxes mapped by toInput.
function mapBoxes(image, boxes, toInput) {
  const corners = toInput(boxes.flatMap((r) => [[r.x0, r.y0], [r.x1, r.y0], [r.x1, r.y1], [r.x0, r.y1]]));
  const h = image.rows, w = image.cols;
  return boxes.map((_, n) => {
    const c = corners.slice(4 * n, 4 * n + 4);
    const xs = c.map((p) => p[0]), ys = c.map((p) => p[1]);
    const x0 = Math.trunc(Math.min(Math.max(Math.floor(Math.min(...xs)), 0), w - 1));
    const y0 = Math.trunc(Math.min(Math.max(Math.floor(Math.min(...ys)), 0), h - 1));
    const x1 = Math.trunc(Math.min(Math.max(Math.ceil(Math.max(...xs)), x0 + 1), w));
    const y1 = Math.trunc(Math.min(Math.max(Math.ceil(Math.max(...ys)), y0 + 1), h));
    return [x0, y0, x1 - x0, y1 - y0];
  });
}

// Digits with their boxes mapped back to the input image's pixels (and their crops28).
export function toDigits(image, reads, toInput, labels, opt) {
  if (!reads.length) return [];
  const boxes = mapBoxes(image, reads, toInput);
  return reads.map((r, n) => {
    const k = bestDigit(r.probs, labels);
    const prob = r.probs[k];
    return new Digit(boxes[n], r.line, labels[k], prob, prob < opt.low_confidence, r.crop28, null, r.cell);
  });
}

// Marks (boxes in the input image's pixels) of what was set aside: [[read or blob, kind], ...].
export function toMarks(image, rejected, toInput) {
  if (!rejected.length) return [];
  const boxes = mapBoxes(image, rejected.map(([r]) => r), toInput);
  return rejected.map(([, kind], n) => new Mark(boxes[n], kind));
}
