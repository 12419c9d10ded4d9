// Rules, grids and the sheet's writing direction: runtime/rules.py, function by function, in the
// same order (see its module doc for what each step does and why).
//
// Images are cv.Mat (uint8 masks CV_8UC1, 0/1); small vectors are plain arrays. Ownership:
// - findRules(mask, height) and findBoxes(mask, height) return a NEW mask Mat (the caller deletes
//   both its input and the result); a Rules' `mask` (the rule pixels, or null) is the Rules' own:
//   `rules.delete()` frees it.
// - Python's `bool(rules)` is `rules.truthy()`; `rules.rows` / `rules.columns` are getters.
// - rotation() returns [m, [nw, nh]] with m a 2x3 nested array (float64), as cv2 gives it;
//   quadrilateral(), orderCorners() and findGrid() return 4 corners as [[x, y], ...] (float32
//   values), or null.

import { cv } from "./cv.js";
import { TUNING } from "./tuning.js";
import { int, median, mod, round, sorted } from "./np.js";

const T = TUNING["rules"];

const RULE_LENGTH = T["RULE_LENGTH"];  // a rule is a straight run longer than this many digit heights
const GRID_TILT = T["GRID_TILT"];  // a grid's rules run within this slope of their median (a sheet's edge may not)
const FEW_MARKS_TILT = T["FEW_MARKS_TILT"];  // a few marks in a line (under 12) tilted this much (degrees) are turned
const MIN_RULES = T["MIN_RULES"];  // fewer long lines than this are a sheet's edge or a stroke, not ruling

const DEG = 180.0 / Math.PI;    // np.degrees(x) = x * (180 / pi)
const RAD = Math.PI / 180.0;    // np.radians(x) = x * (pi / 180)

// --- the writing direction ------------------------------------------------------------------------

// Angles (degrees, 0..180) of the lines from each point ([x, y]) to its k nearest ones.
export function neighbourAngles(points, k = 2) {
  const n = points.length;
  const out = [];
  for (let i = 0; i < n; i++) {
    const [px, py] = points[i];
    const dist = new Float64Array(n);
    for (let j = 0; j < n; j++) {
      const dx = px - points[j][0], dy = py - points[j][1];
      dist[j] = i === j ? Infinity : Math.sqrt(dx * dx + dy * dy);   // np.hypot (exact squares here)
    }
    // the k nearest (ties: the lower index, as numpy's selection mostly gives)
    const near = [];
    for (let j = 0; j < n; j++) {
      if (near.length === k && dist[j] >= dist[near[k - 1]]) continue;
      let at = near.length;
      while (at > 0 && dist[near[at - 1]] > dist[j]) at--;
      near.splice(at, 0, j);
      if (near.length > k) near.pop();
    }
    for (const j of near) {
      out.push(mod(Math.atan2(points[j][1] - py, points[j][0] - px) * DEG, 180));
    }
  }
  return out;
}

// The strongest direction of a circular histogram (1-degree bins, smoothed).
export function peak(angles, weights, period) {
  const bins = int(period);
  const hist = new Float64Array(bins);
  for (let i = 0; i < angles.length; i++) hist[mod(int(round(angles[i])), bins)] += weights[i];
  const smooth = new Float64Array(bins);
  for (let i = 0; i < bins; i++) {
    let s = 0;                                  // sum(np.roll(hist, s) * w): roll(h, s)[i] = h[i - s]
    for (const [shift, w] of [[-2, 1], [-1, 2], [0, 3], [1, 2], [2, 1]]) s += hist[mod(i - shift, bins)] * w;
    smooth[i] = s;
  }
  let top = 0;
  for (let i = 1; i < bins; i++) if (smooth[i] > smooth[top]) top = i;
  // sub-bin: the weighted mean of the bins around the top
  let num = 0, den = 0;
  for (let o = -2; o <= 2; o++) {
    const v = hist[mod(top + o, bins)];
    num += o * v;
    den += v;
  }
  return top + num / Math.max(den, 1e-9);
}

// np.arange(start, stop, step) for floats, as numpy fills it (start + i * delta, delta taken from
// the first two values).
function arange(start, stop, step) {
  const n = Math.max(0, Math.ceil((stop - start) / step));
  const out = new Float64Array(n);
  if (n > 0) out[0] = start;
  if (n > 1) out[1] = start + step;
  const delta = (start + step) - start;
  for (let i = 2; i < n; i++) out[i] = start + i * delta;
  return out;
}

// The angle of the lines of writing through `points` (mark centres), by the projection profile.
export function profileSkew(points, height, limit = 45.0) {
  let best = 0.0, bestScore = -1.0;
  const bin = Math.max(height / 3, 1.0);
  const across = new Float64Array(points.length);
  for (const coarse of [true, false]) {
    const grid = coarse ? arange(-limit, limit + 0.1, 1.0) : arange(best - 1, best + 1.01, 0.1);
    for (const a of grid) {
      const t = a * RAD;
      const c = Math.cos(t), s = Math.sin(t);
      let lo = Infinity;
      for (let i = 0; i < points.length; i++) {
        across[i] = points[i][1] * c - points[i][0] * s;
        if (across[i] < lo) lo = across[i];
      }
      const counts = new Map();
      for (let i = 0; i < points.length; i++) {
        const k = int((across[i] - lo) / bin);
        counts.set(k, (counts.get(k) || 0) + 1);
      }
      let score = 0;
      for (const v of counts.values()) score += v * v;
      if (score > bestScore + 1e-9 || (Math.abs(score - bestScore) <= 1e-9 && Math.abs(a) < Math.abs(best))) {
        best = a;
        bestScore = score;
      }
    }
  }
  return best;
}

// [angles (degrees, 0..180), lengths] of the long straight segments of a binary mask (Hough's
// probabilistic transform on the mask shrunk to at most 400 px).
export function lineAngles(mask, minLength) {
  const scale = Math.min(1.0, 400 / Math.max(mask.rows, mask.cols));
  let small = null;
  const segments = new cv.Mat();
  try {
    if (scale < 1) {
      const size = new cv.Size(Math.max(1, round(mask.cols * scale)), Math.max(1, round(mask.rows * scale)));
      small = new cv.Mat();
      cv.resize(mask, small, size, 0, 0, cv.INTER_AREA);
      cv.threshold(small, small, 0, 1, cv.THRESH_BINARY);           // (... > 0).astype(np.uint8)
      minLength *= scale;
    }
    cv.HoughLinesP(small || mask, segments, 1, Math.PI / 360, int(minLength / 2), minLength,
                   Math.max(2, minLength / 20));
    const s = segments.data32S;
    const angles = [], lengths = [];
    for (let i = 0; i + 3 < s.length; i += 4) {
      const dx = s[i + 2] - s[i], dy = s[i + 3] - s[i + 1];
      angles.push(mod(Math.atan2(dy, dx) * DEG, 180));
      lengths.push(Math.sqrt(dx * dx + dy * dy));
    }
    return [angles, lengths];
  } finally {
    segments.delete();
    if (small) small.delete();
  }
}

// [skew in degrees, doubtful]: see writing_angle in rules.py.
// The skew of a few marks in a line: the direction their nearest neighbours share, if most share
// it within 15 degrees and it is a clear tilt (see rules.neighbour_skew).
export function neighbourSkew(angles) {
  const top = peak(angles, angles.map(() => 1), 180);
  let near = 0;
  for (const a of angles) if (Math.abs(mod(a - top + 90, 180) - 90) < 15) near++;
  const skew = mod(top + 90, 180) - 90;
  return near / angles.length >= 0.5 && Math.abs(skew) >= FEW_MARKS_TILT ? skew : 0.0;
}

export function writingAngle(blobs, mask, height, flattened = false) {
  let marks = blobs.filter((b) => b.h <= 2 * height && Math.max(b.w, b.h) >= 0.3 * height);
  if (marks.length > 400) marks = sorted(marks, (b) => -b.area).slice(0, 400);
  const [rules, lengths] = lineAngles(mask, 4 * height);
  let angles = [];
  let points = null;
  if (marks.length >= 3) {
    points = marks.map((b) => [(b.x0 + b.x1) / 2, (b.y0 + b.y1) / 2]);
    angles = neighbourAngles(points);
  }
  let skew;
  if (lengths.length >= 3) {
    skew = peak(rules.map((r) => mod(r, 90)), lengths, 90);
    let num = 0, den = 0;                       // np.average over the segments that agree: refine
    for (let i = 0; i < rules.length; i++) {
      const off = mod(rules[i] - skew + 45, 90) - 45;
      if (Math.abs(off) < 3) {
        num += off * lengths[i];
        den += lengths[i];
      }
    }
    skew += num / den;
  } else if (marks.length >= 12 && !flattened) {
    skew = profileSkew(points, height);
  } else if (angles.length >= 6 && !flattened) {   // a few marks: a line's tilt, if clear
    skew = neighbourSkew(angles);
    if (!skew && marks.length >= 6) {
      skew = profileSkew(points, height);
      if (!(Math.abs(skew) >= FEW_MARKS_TILT)) skew = 0.0;
    }
  } else if (angles.length >= 6) {
    skew = 0.0;
  } else {
    return [0.0, false];
  }
  skew = mod(skew + 45, 90) - 45;
  let beside = 0, above = 0;
  for (const a of angles) {
    const turned = mod(a - skew, 180);
    if (Math.min(turned, 180 - turned) < 20) beside++;
    if (Math.abs(turned - 90) < 20) above++;
  }
  return [skew, Math.abs(skew) > 20 || above >= beside];
}

// [m (2x3 nested array), [nw, nh]]: the affine rotating an image of `shape` ([h, w]) by `degrees`
// about its centre, and the canvas that holds all of it.
export function rotation(shape, degrees) {
  const [h, w] = shape;
  const r = cv.getRotationMatrix2D(new cv.Point(w / 2, h / 2), degrees, 1.0);
  let d;
  try {
    d = Array.from(r.data64F);
  } finally {
    r.delete();
  }
  const m = [d.slice(0, 3), d.slice(3, 6)];
  const cos = Math.abs(m[0][0]), sin = Math.abs(m[0][1]);
  const nw = int(Math.ceil(w * cos + h * sin)), nh = int(Math.ceil(w * sin + h * cos));
  m[0][2] += nw / 2 - w / 2;
  m[1][2] += nh / 2 - h / 2;
  return [m, [nw, nh]];
}

// Whether four corners ([[x, y], ...]) can be a photographed rectangle.
export function rectangleLike(quad, slack = 35.0) {
  for (let i = 0; i < 4; i++) {
    const p = quad[i], prev = quad[(i + 3) % 4], next = quad[(i + 1) % 4];
    const ax = prev[0] - p[0], ay = prev[1] - p[1], bx = next[0] - p[0], by = next[1] - p[1];
    const na = Math.sqrt(ax * ax + ay * ay), nb = Math.sqrt(bx * bx + by * by);
    const cos = (ax * bx + ay * by) / Math.max(na * nb, 1e-9);
    if (Math.abs(Math.acos(Math.min(Math.max(cos, -1), 1)) * DEG - 90) > slack) return false;
  }
  return true;
}

// The contour's (a cv.Mat of points, the caller's) convex hull simplified to 4 corners, or null.
export function quadrilateral(contour) {
  const hull = new cv.Mat();
  const approx = new cv.Mat();
  try {
    cv.convexHull(contour, hull, false, true);
    const length = cv.arcLength(hull, true);
    for (const eps of [0.02, 0.03, 0.04, 0.06, 0.08, 0.1]) {
      cv.approxPolyDP(hull, approx, eps * length, true);
      if (approx.rows === 4) {
        const p = approx.data32S;
        return [0, 1, 2, 3].map((i) => [Math.fround(p[2 * i]), Math.fround(p[2 * i + 1])]);
      }
      if (approx.rows < 4) return null;
    }
    return null;
  } finally {
    hull.delete();
    approx.delete();
  }
}

// Corners as top-left, top-right, bottom-right, bottom-left (float32, as numpy computes them).
export function orderCorners(pts) {
  const f = Math.fround;
  pts = pts.map(([x, y]) => [f(x), f(y)]);
  const cx = f(f(f(f(pts[0][0] + pts[1][0]) + pts[2][0]) + pts[3][0]) / 4);
  const cy = f(f(f(f(pts[0][1] + pts[1][1]) + pts[2][1]) + pts[3][1]) / 4);
  const angles = pts.map(([x, y]) => f(Math.atan2(f(y - cy), f(x - cx))));
  const order = [0, 1, 2, 3].sort((a, b) => angles[a] - angles[b]);   // clockwise from the left
  pts = order.map((i) => pts[i]);
  let start = 0;                                        // top-left: smallest x + y
  for (let i = 1; i < 4; i++) if (f(pts[i][0] + pts[i][1]) < f(pts[start][0] + pts[start][1])) start = i;
  return [0, 1, 2, 3].map((i) => pts[(i + start) % 4]);
}

// Corners of a table or grid where its outermost rules meet, or null (see find_grid).
export function findGrid(rules, shape, minShare = 0.05) {
  function gridRules(found) {
    const longest = found.reduce((m, r) => Math.max(m, r.end - r.start), 0);
    const long = found.filter((r) => r.end - r.start >= 0.5 * longest);
    const tilt = long.length ? median(long.map((r) => r.slope)) : 0.0;
    return sorted(long.filter((r) => Math.abs(r.slope - tilt) <= GRID_TILT), (r) => r.at);
  }
  function cross(r, o) {
    return o.start - 2 <= r.at && r.at <= o.end + 2 && r.start - 2 <= o.at && o.at <= r.end + 2;
  }
  function crossed(found, others) {           // rules that cross at least three of the others
    return found.filter((r) => others.filter((o) => cross(r, o)).length >= 3);
  }
  let hor = thin(rules.horizontal), ver = thin(rules.vertical);
  [hor, ver] = [crossed(hor, ver), crossed(ver, hor)];
  [hor, ver] = [crossed(hor, ver), crossed(ver, hor)];
  [hor, ver] = largestTable(hor, ver, cross);
  [hor, ver] = [gridRules(hor), gridRules(ver)];
  if (hor.length < 3 || ver.length < 3) return null;
  const pairs = [[hor[0], ver[0]], [hor[0], ver[ver.length - 1]],
    [hor[hor.length - 1], ver[ver.length - 1]], [hor[hor.length - 1], ver[0]]];
  const quad = pairs.map(([h, v]) => crossing(h, v).map(Math.fround));   // np.float32(corners)
  if (!quad.every(([x, y]) => Number.isFinite(x) && Number.isFinite(y)) || !rectangleLike(quad, 25)) return null;
  const m = cv.matFromArray(4, 1, cv.CV_32FC2, quad.flat());
  try {
    if (cv.contourArea(m) < minShare * shape[0] * shape[1]) return null;
  } finally {
    m.delete();
  }
  return quad;
}

// [horizontal, vertical] rules of the biggest table (rules joined by crossing each other).
export function largestTable(hor, ver, cross) {
  const seenH = new Set();
  let best = [[], []], bestSize = -1.0;
  for (let start = 0; start < hor.length; start++) {
    if (seenH.has(start)) continue;
    const todo = [["h", start]], hs = new Set([start]), vs = new Set();
    while (todo.length) {
      const [kind, k] = todo.pop();
      if (kind === "h") {
        const found = [];
        ver.forEach((v, j) => { if (!vs.has(j) && cross(hor[k], v)) found.push(j); });
        found.forEach((j) => vs.add(j));
        for (const j of found) todo.push(["v", j]);
      } else {
        const found = [];
        hor.forEach((h, j) => { if (!hs.has(j) && cross(h, ver[k])) found.push(j); });
        found.forEach((j) => hs.add(j));
        for (const j of found) todo.push(["h", j]);
      }
    }
    hs.forEach((j) => seenH.add(j));
    const H = [...hs].sort((a, b) => a - b), V = [...vs].sort((a, b) => a - b);  // a small int set's order
    const size = H.reduce((s, j) => s + hor[j].end - hor[j].start, 0) * V.reduce((s, j) => s + ver[j].end - ver[j].start, 0);
    if (size > bestSize) {
      best = [H.map((j) => hor[j]), V.map((j) => ver[j])];
      bestSize = size;
    }
  }
  return best;
}

// [x, y] where a horizontal and a vertical rule (as straight lines) cross.
export function crossing(h, v) {
  // y = h.at + h.slope * (x - hm);  x = v.at + v.slope * (y - vm)
  const hm = (h.start + h.end) / 2, vm = (v.start + v.end) / 2;
  const denom = 1 - h.slope * v.slope;
  if (Math.abs(denom) < 1e-6) return [NaN, NaN];
  const x = (v.at + v.slope * (h.at - h.slope * hm - vm)) / denom;
  return [x, h.at + h.slope * (x - hm)];
}

// --- rules and grids ------------------------------------------------------------------------------

// A straight line on the page: horizontal (at y from x0 to x1) or vertical (at x, y0..y1).
export class Rule {
  constructor(at, start, end, slope = 0.0, width = 1.0) {
    this.at = at;
    this.start = start;
    this.end = end;
    this.slope = slope;
    this.width = width;
  }
}

// The page's horizontal and vertical rules, and the ink they covered (a cv.Mat mask or null).
export class Rules {
  constructor(horizontal = [], vertical = [], mask = null) {
    this.horizontal = horizontal;
    this.vertical = vertical;
    this.mask = mask;
    this.boxes = [];          // [x0, y0, x1, y1] of form boxes taken out
    this.bridge = 0;          // the gap (px) across a rule that a stroke crossing it bridges
  }

  truthy() {                  // Python's Rules.__bool__
    return this.horizontal.length > 0 || this.vertical.length > 0 || this.boxes.length > 0;
  }

  get rows() {                // the horizontal rules, each spanning its table
    return spread(this.horizontal);
  }

  get columns() {             // the vertical rules, each spanning its table
    return spread(this.vertical);
  }

  // [before, after]: the nearest of `rules` on either side of `across`, among those spanning
  // `along`, or null.
  static between(rules, along, across) {
    const spanning = rules.filter((r) => r.start <= along && along <= r.end).map((r) => r.at);
    const before = spanning.filter((a) => a < across);
    const after = spanning.filter((a) => a > across);
    return before.length && after.length ? [Math.max(...before), Math.min(...after)] : null;
  }

  delete() {
    if (this.mask) this.mask.delete();
    this.mask = null;
  }
}

// Pixels of `mask` on straight runs at least `length` long (a new Mat).
export function runs(mask, length, horizontal) {
  const across = horizontal ? new cv.Size(1, 5) : new cv.Size(5, 1);          // sizes are (w, h)
  const k1 = cv.getStructuringElement(cv.MORPH_RECT, across);
  const thick = new cv.Mat();
  try {
    cv.dilate(mask, thick, k1);
    const out = openRuns(thick, length, horizontal);
    cv.bitwise_and(out, mask, out);
    return out;
  } finally {
    k1.delete();
    thick.delete();
  }
}

// cv2.morphologyEx(mask, MORPH_OPEN, a MORPH_RECT kernel `length` long along rows (or columns))
// of a binary mask, by its runs: OpenCV.js's opening costs O(length) a pixel (no SIMD in wasm;
// 200 ms on a 2 MP page), this O(1). With the kernel's anchor at a = length // 2 and OpenCV's
// borders (outside counts as ink for the erosion, as background for the dilation), a run of ink
// survives or not as a whole: one inside the image if at least `length` long, one touching the
// start (end) of its row if at least length - a (a + 1), one filling its row always; an even
// kernel shifts what survives by one pixel (OpenCV's dilation and erosion share the anchor).
function openRuns(src, length, horizontal) {
  const H = src.rows, W = src.cols, a = Math.floor(length / 2), shift = 2 * a - length + 1;
  const out = cv.Mat.zeros(H, W, cv.CV_8UC1);
  const S = src.data, O = out.data;
  const n = horizontal ? W : H;                        // pixels along a run's row (column)
  // the part of [s, e) that survives (an empty range if none)
  const kept = (s, e) => {
    if (s === 0 && e === n) return [0, n];
    if (s === 0) return e >= length - a ? [0, Math.min(n, e + shift)] : [0, 0];
    if (e === n) return e - s >= a + 1 ? [s + shift, n] : [0, 0];
    return e - s >= length ? [s + shift, Math.min(n, e + shift)] : [0, 0];
  };
  if (horizontal) {
    for (let y = 0; y < H; y++) {
      const row = y * W;
      for (let x = 0; x < W;) {
        if (!S[row + x]) { x++; continue; }
        let e = x;
        while (e < W && S[row + e]) e++;
        const [from, to] = kept(x, e), v = S[row + x];
        for (let i = from; i < to; i++) O[row + i] = v;
        x = e;
      }
    }
  } else {                                             // row by row, a run start per column
    const start = new Int32Array(W).fill(-1);
    for (let y = 0; y <= H; y++) {
      for (let x = 0; x < W; x++) {
        if (y < H && S[y * W + x]) {
          if (start[x] < 0) start[x] = y;
        } else if (start[x] >= 0) {
          const [from, to] = kept(start[x], y), v = S[start[x] * W + x];
          for (let i = from; i < to; i++) O[i * W + x] = v;
          start[x] = -1;
        }
      }
    }
  }
  return out;
}

// One Rule per connected run of line pixels at least `length` long.
export function ruleList(lines, length, horizontal) {
  const labels = new cv.Mat(), stats = new cv.Mat(), centroids = new cv.Mat();
  try {
    const n = cv.connectedComponentsWithStats(lines, labels, stats, centroids, 8, cv.CV_32S);
    const out = [];
    for (let i = 1; i < n; i++) {
      // views taken afresh each time: a new Mat below may grow the wasm memory, detaching older ones
      const [x, y, w, h, area] = stats.data32S.subarray(5 * i, 5 * i + 5);
      const run = horizontal ? w : h;
      if (run < length) continue;
      const own = new cv.Mat(h, w, cv.CV_8UC1);
      let m;
      try {
        const L = labels.data32S, O = own.data, cols = labels.cols;
        for (let r = 0; r < h; r++) {
          for (let c = 0; c < w; c++) O[r * w + c] = L[(y + r) * cols + x + c] === i ? 1 : 0;
        }
        m = cv.moments(own, true);
      } finally {
        own.delete();
      }
      const slope = m.mu11 / Math.max(horizontal ? m.mu20 : m.mu02, 1e-9);
      const at = horizontal ? centroids.data64F[2 * i + 1] : centroids.data64F[2 * i];
      out.push(new Rule(at, horizontal ? x : y, horizontal ? x + run : y + run, slope, area / run));
    }
    return out;
  } finally {
    labels.delete();
    stats.delete();
    centroids.delete();
  }
}

// The rules no thicker than 2.5 times the typical one.
export function thin(rules) {
  if (!rules.length) return [];
  const typical = median(rules.map((r) => r.width));
  return rules.filter((r) => r.width <= 2.5 * typical);
}

// Rules of one table share its extent (see spread in rules.py).
export function spread(rules) {
  const out = [], lines = thin(rules);
  for (const r of rules) {
    let start = r.start, end = r.end;
    for (const o of lines) {
      const overlap = Math.min(r.end, o.end) - Math.max(r.start, o.start);
      if (o.end - o.start > end - start && overlap >= 0.5 * (r.end - r.start)) {
        start = Math.min(start, o.start);
        end = Math.max(end, o.end);
      }
    }
    out.push(new Rule(r.at, start, end, r.slope, r.width));
  }
  return out;
}

// Pieces of one rule joined into one (see joined in rules.py).
export function joined(rules, tolerance) {
  const out = [];
  for (const r of sorted(rules, (r) => r.at)) {
    const last = out[out.length - 1];
    if (last && r.at - last.at < tolerance) {
      const a = last.end - last.start, b = r.end - r.start;
      const longer = a >= b ? last : r;
      out[out.length - 1] = new Rule((last.at * a + r.at * b) / Math.max(1, a + b), Math.min(last.start, r.start),
                                     Math.max(last.end, r.end), longer.slope, longer.width);
    } else {
      out.push(r);
    }
  }
  return out;
}

// [mask without its rules (a new Mat), Rules]: see find_rules in rules.py.
export function findRules(mask, height) {
  const length = Math.max(8, int(RULE_LENGTH * height));
  if (Math.min(mask.rows, mask.cols) < length) return [mask.clone(), new Rules()];
  const hor = runs(mask, length, true);
  const ver = runs(mask, length, false);
  const lines = new cv.Mat();
  const temps = [hor, ver];
  try {
    cv.bitwise_or(hor, ver, lines);
    if (cv.countNonZero(lines) === 0) {
      temps.push(lines);
      return [mask.clone(), new Rules()];
    }
    const h = mask.rows, w = mask.cols;
    const inner = (r, side) => 2 < r.at && r.at < side - 3;                // the page's own border is no rule
    const rules = new Rules(joined(ruleList(hor, length, true).filter((r) => inner(r, h)), height / 4),
                            joined(ruleList(ver, length, false).filter((r) => inner(r, w)), height / 4), lines);
    if (rules.horizontal.length + rules.vertical.length < MIN_RULES) {    // a sheet edge, a long stroke
      temps.push(lines);
      return [mask.clone(), new Rules()];
    }
    let total = 0;
    for (const r of rules.horizontal.concat(rules.vertical)) total += r.end - r.start;
    const width = cv.countNonZero(lines) / Math.max(1, total);             // rule pixels per unit of length
    const rest = new cv.Mat(), bridgeV = new cv.Mat(), bridgeH = new cv.Mat(), keep = new cv.Mat();
    temps.push(rest, bridgeV, bridgeH, keep);
    cv.bitwise_not(lines, rest);
    cv.bitwise_and(mask, rest, rest);
    const k = int(Math.ceil(width)) + 6;                                   // the run and its 2 px margins
    rules.bridge = k;
    const kv = cv.getStructuringElement(cv.MORPH_RECT, new cv.Size(1, k));
    const kh = cv.getStructuringElement(cv.MORPH_RECT, new cv.Size(k, 1));
    temps.push(kv, kh);
    cv.morphologyEx(rest, bridgeV, cv.MORPH_CLOSE, kv);
    cv.morphologyEx(rest, bridgeH, cv.MORPH_CLOSE, kh);
    cv.bitwise_and(bridgeV, hor, bridgeV);
    cv.bitwise_and(bridgeH, ver, bridgeH);
    cv.bitwise_or(bridgeV, bridgeH, keep);
    const clean = new cv.Mat();
    cv.bitwise_or(rest, keep, clean);
    return [clean, rules];
  } finally {
    for (const m of temps) m.delete();
  }
}

const BOX_SIZE = T["BOX_SIZE"];  // a form box is this many digit heights wide and tall

// [mask without its boxes (a new Mat), [[x0, y0, x1, y1], ...]]: see find_boxes in rules.py.
export function findBoxes(mask, height) {
  const labels = new cv.Mat(), stats = new cv.Mat(), centroids = new cv.Mat();
  const out = mask.clone();
  try {
    const n = cv.connectedComponentsWithStats(mask, labels, stats, centroids, 8, cv.CV_32S);
    const lo = BOX_SIZE[0] * height, hi = BOX_SIZE[1] * height;
    const S = stats.data32S, L = labels.data32S, O = out.data, cols = mask.cols;
    const boxes = [];
    for (let i = 1; i < n; i++) {
      const [x, y, w, h] = S.subarray(5 * i, 5 * i + 4);
      if (!(w >= lo && w <= hi && h >= lo && h <= hi && w >= 0.6 * h && w <= 1.6 * h)) continue;
      const own = (r, c) => L[(y + r) * cols + x + c] === i;
      const t = Math.max(2, int(round(0.12 * Math.min(w, h))));
      const top = Math.min(t, h), left = Math.min(t, w);
      // the share of each side's columns (rows) with own ink within t of that side
      const share = (across, along, inBand) => {
        let hit = 0;
        for (let a = 0; a < along; a++) {
          for (let b = 0; b < across; b++) if (inBand(a, b)) { hit++; break; }
        }
        return hit / along;
      };
      const sides = [
        share(top, w, (c, r) => own(r, c)),
        share(top, w, (c, r) => own(h - 1 - r, c)),
        share(left, h, (r, c) => own(r, c)),
        share(left, h, (r, c) => own(r, w - 1 - c)),
      ];
      if (Math.min(...sides) < 0.85) continue;
      for (let r = 0; r < h; r++) {
        for (let c = 0; c < w; c++) {
          const frame = r < t || r >= h - t || c < t || c >= w - t;
          if (frame && own(r, c)) O[(y + r) * cols + x + c] = 0;
        }
      }
      boxes.push([x, y, x + w, y + h]);
    }
    return [out, boxes];
  } catch (e) {
    out.delete();
    throw e;
  } finally {
    labels.delete();
    stats.delete();
    centroids.delete();
  }
}
