// Ink on a page: the paper's light divided out, a hysteresis threshold, connected components,
// and the candidate digits (blobs) they form, with the page's scale: the port of runtime/ink.py,
// function by function, in the same order (see its docs for the why of each step).
//
// Images are cv.Mat: gray pages and masks CV_8UC1, labels CV_32SC1, float thumbnails CV_32FC1.
// A function returns new Mats that its caller deletes (an `Ink` holds its labels and flat page:
// `ink.delete()`); the Mats it takes stay the caller's. Component stats are an Int32Array of
// n * 5 (x, y, w, h, area), as cv2's stats array row by row.

import { cv, cropMat } from "./cv.js";
import { Rules, findBoxes, findRules } from "./rules.js";
import { TUNING } from "./tuning.js";
import { int, maxBy, npRound, round, searchsorted, sorted } from "./np.js";

const T = TUNING["ink"];

// Mats made in a scope, deleted together (`finally { tmp.free(); }`).
class Scratch {
  constructor() { this.mats = []; }
  add(m) { this.mats.push(m); return m; }
  mat() { return this.add(new cv.Mat()); }
  free() { for (const m of this.mats) if (!m.isDeleted()) m.delete(); this.mats = []; }
}

// --- helpers ------------------------------------------------------------------------------------

// `image` downscaled to `size` ([w, h]), anti-aliased (a new Mat): see ink.downscale.
export function downscale(image, size) {
  const h = image.rows, w = image.cols;
  let fx = w / size[0], fy = h / size[1];
  if (Number.isInteger(fx) && Number.isInteger(fy)) {
    const out = new cv.Mat();
    cv.resize(image, out, new cv.Size(size[0], size[1]), 0, 0, cv.INTER_AREA);
    return out;
  }
  const tmp = new Scratch();
  try {
    let src = image;
    const k = int(Math.min(fx, fy));
    if (k >= 2) {
      src = tmp.add(blockMean(image, k));
      fx = src.cols / size[0];
      fy = src.rows / size[1];
    }
    const sx = 0.5 * Math.sqrt(Math.max(fx * fx - 1, 0)), sy = 0.5 * Math.sqrt(Math.max(fy * fy - 1, 0));
    if (sx > 0.1 || sy > 0.1) {
      const blurred = tmp.mat();
      cv.GaussianBlur(src, blurred, new cv.Size(0, 0), Math.max(sx, 0.1), Math.max(sy, 0.1), cv.BORDER_REPLICATE);
      src = blurred;
    }
    return resizeLinear(src, size);
  } finally {
    tmp.free();
  }
}

// OpenCV's INTER_LINEAR taps from n samples to `size`: [first, second, their weights in 1/2048]
// (Int32Arrays), computed as ink.linear_taps (float32 positions, edges clamped).
export function linearTaps(n, size) {
  const first = new Int32Array(size), second = new Int32Array(size);
  const a = new Int32Array(size), b = new Int32Array(size);
  const step = 1.0 / (size / n);
  for (let j = 0; j < size; j++) {
    let f = Math.fround((j + 0.5) * step - 0.5);
    const fl = Math.floor(f);
    f = Math.fround(f - fl);
    if (fl < 0 || fl >= n - 1) f = 0;
    first[j] = Math.min(Math.max(fl, 0), n - 1);
    second[j] = Math.min(first[j] + 1, n - 1);
    a[j] = round(Math.fround(Math.fround(1 - f) * 2048));
    b[j] = round(Math.fround(f * 2048));
  }
  return [first, second, a, b];
}

// cv2.resize(image, size, INTER_LINEAR) of a uint8 Mat in integers, as ink.resize_linear (a new Mat).
export function resizeLinear(image, size) {
  const [x0, x1, a0, a1] = linearTaps(image.cols, size[0]);
  const [y0, y1, b0, b1] = linearTaps(image.rows, size[1]);
  const cols = image.cols, W = size[0];
  // the output first: a new Mat may grow the wasm memory, which detaches every view of it taken
  // before (`.data` then reads as empty: a photo over 20 MP read as black)
  const out = new cv.Mat(size[1], W, cv.CV_8UC1);
  const src = image.data;
  const rows = new Map();                       // source row -> its horizontally interpolated values (x 128)
  const row = (y) => {
    let r = rows.get(y);
    if (!r) {
      r = new Int32Array(W);
      const base = y * cols;
      for (let x = 0; x < W; x++) r[x] = (src[base + x0[x]] * a0[x] + src[base + x1[x]] * a1[x]) >> 4;
      rows.set(y, r);
    }
    return r;
  };
  const O = out.data;
  for (let j = 0; j < size[1]; j++) {
    const r0 = row(y0[j]), r1 = row(y1[j]), w0 = b0[j], w1 = b1[j];
    if (j > 0 && y0[j - 1] !== y0[j] && y0[j - 1] !== y1[j]) rows.delete(y0[j - 1]);
    for (let x = 0, at = j * W; x < W; x++, at++) {
      const v = (((r0[x] * w0) >> 16) + ((r1[x] * w1) >> 16) + 2) >> 2;
      O[at] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return out;
}

// cv2.resize(image, size, INTER_AREA) of a uint8 Mat shrunk by any factor, as ink.resize_area: each
// output pixel the exact mean of the area it covers, rounded half to even (a new Mat). Whole
// factors go to OpenCV (its integer block means).
export function resizeArea(image, size) {
  const out = new cv.Mat();
  if (image.cols % size[0] === 0 && image.rows % size[1] === 0) {
    cv.resize(image, out, new cv.Size(size[0], size[1]), 0, 0, cv.INTER_AREA);
    return out;
  }
  out.delete();
  const rows = image.rows, cols = image.cols, [nw, nh] = size;
  let values = image.data, h = rows;
  if (rows !== nh) {                 // rows first (numpy's axis 0): each output row sums the rows it covers
    const res = new Float64Array(nh * cols), sums = new Float64Array(cols);
    for (let j = 0; j < nh; j++) {
      const k0 = j * rows, k1 = (j + 1) * rows;
      const w0 = Math.floor(k0 / nh), w1 = Math.floor(k1 / nh);
      const p0 = (k0 % nh) / nh, p1 = (k1 % nh) / nh;
      sums.fill(0);
      for (let i = w0; i < w1; i++) for (let c = 0, at = i * cols; c < cols; c++) sums[c] += values[at + c];
      for (let c = 0, o = j * cols; c < cols; c++) {
        const last = w1 < rows ? values[w1 * cols + c] : 0;         // the zero row numpy pads with
        res[o + c] = (sums[c] + p1 * last) - p0 * values[w0 * cols + c];
      }
    }
    values = res;
    h = nh;
  }
  let out2 = values;
  if (cols !== nw) {                 // then columns (axis 1), within each row
    out2 = new Float64Array(h * nw);
    for (let j = 0; j < nw; j++) {
      const k0 = j * cols, k1 = (j + 1) * cols;
      const w0 = Math.floor(k0 / nw), w1 = Math.floor(k1 / nw);
      const p0 = (k0 % nw) / nw, p1 = (k1 % nw) / nw;
      for (let r = 0; r < h; r++) {
        const at = r * cols;
        let sum = 0;
        for (let i = w0; i < w1; i++) sum += values[at + i];
        const last = w1 < cols ? values[at + w1] : 0;
        out2[r * nw + j] = (sum + p1 * last) - p0 * values[at + w0];
      }
    }
  }
  const result = new cv.Mat(nh, nw, cv.CV_8UC1);
  const f = (nw * nh) / (rows * cols);
  const O = result.data;
  for (let i = 0; i < O.length; i++) O[i] = round(out2[i] * f);
  return result;
}

// `image` shrunk d times: the mean of each d x d block (a new Mat; a copy when d <= 1).
export function blockMean(image, d) {
  if (d <= 1) return image.clone();
  const h = image.rows, w = image.cols;
  const hs = Math.max(1, Math.floor(h / d)), ws = Math.max(1, Math.floor(w / d));
  const out = new cv.Mat();
  if (hs * d > h || ws * d > w) {            // smaller than one block: a plain average
    cv.resize(image, out, new cv.Size(ws, hs), 0, 0, cv.INTER_AREA);
    return out;
  }
  const view = image.roi(new cv.Rect(0, 0, ws * d, hs * d));
  try {
    cv.resize(view, out, new cv.Size(ws, hs), 0, 0, cv.INTER_AREA);
  } finally {
    view.delete();
  }
  return out;
}

// A uint8 Mat of table[label] for every pixel of a label image (table: 0/1 per label).
export function perLabel(table, labels) {
  const out = new cv.Mat(labels.rows, labels.cols, cv.CV_8UC1);
  const L = labels.data32S, O = out.data;
  for (let i = 0; i < L.length; i++) O[i] = table[L[i]];
  return out;
}

const WINDOW = T["WINDOW"];  // with a known digit height, even out the light over this many digit heights
const STRONG = T["STRONG"];  // certain ink: at least this many times as far below the paper as faint ink

// uint8 0/1 mask (a new Mat) of the pixels of a uint8 Mat below (`below`) or at least (`atLeast`)
// a real number t, as numpy's `a < t` / `a >= t`.
export function below(src, t) {
  const out = new cv.Mat();
  cv.threshold(src, out, Math.ceil(t) - 1, 1, cv.THRESH_BINARY_INV);
  return out;
}

export function atLeast(src, t) {
  const out = new cv.Mat();
  cv.threshold(src, out, Math.ceil(t) - 1, 1, cv.THRESH_BINARY);
  return out;
}

// --- ink ----------------------------------------------------------------------------------------

// [flattened page, the brightness map at 1/d scale, d] (new Mats): see ink.flatten_light.
export function flattenLight(gray, window) {
  const h = gray.rows, w = gray.cols;
  const d = Math.max(1, int(Math.floor(window / 6)));
  const tmp = new Scratch();
  const paper = new cv.Mat();
  try {
    const small = tmp.add(blockMean(gray, d));
    const k = int(Math.ceil(window / d)) | 1;
    const kernel = tmp.add(cv.getStructuringElement(cv.MORPH_ELLIPSE, new cv.Size(k, k)));
    const closed = tmp.mat();
    cv.morphologyEx(small, closed, cv.MORPH_CLOSE, kernel, new cv.Point(-1, -1), 1, cv.BORDER_REPLICATE,
                    cv.morphologyDefaultBorderValue());
    const blurred = tmp.mat();
    cv.blur(closed, blurred, new cv.Size(k, k), new cv.Point(-1, -1), cv.BORDER_DEFAULT);
    cv.min(blurred, closed, paper);              // smoothed, never brighter than the closing
    const full = d > 1 ? tmp.add(resizeLinear(paper, [w, h])) : paper;
    return [divideLight(gray, full), paper, d];
  } catch (e) {
    paper.delete();
    throw e;
  } finally {
    tmp.free();
  }
}

// round(255 * gray / max(paper, 1)) (halves to even), at most 255, as ink.divide_light (a new
// Mat; the np.maximum(full, 1) of flatten_light is done here).
export function divideLight(gray, paper) {
  if (!QUOTIENTS) {                             // every (paper, gray) pair once: 64 K roundings
    QUOTIENTS = new Uint8Array(256 * 256);
    for (let p = 0; p < 256; p++) {
      for (let g = 0; g < 256; g++) QUOTIENTS[p * 256 + g] = Math.min(round((g * 255.0) / Math.max(p, 1)), 255);
    }
  }
  const out = new cv.Mat(gray.rows, gray.cols, cv.CV_8UC1);
  const G = gray.data, P = paper.data, O = out.data, Q = QUOTIENTS;
  for (let i = 0; i < G.length; i++) O[i] = Q[(P[i] << 8) | G[i]];
  return out;
}
let QUOTIENTS = null;

// The 256-bin histogram (Float64Array of counts) of a uint8 Mat, over `mask` (a 0/1 Mat) or all.
function histogram(src, mask = null) {
  const hist = new Float64Array(256);
  const S = src.data;
  if (mask) {
    const M = mask.data;
    for (let i = 0; i < S.length; i++) if (M[i]) hist[S[i]]++;
  } else {
    for (let i = 0; i < S.length; i++) hist[S[i]]++;
  }
  return hist;
}

// [weak, strong, paper, darkest] grey levels of a flattened page: see ink.ink_threshold.
export function inkThreshold(flat, onPaper = null) {
  let hist = histogram(flat, onPaper);
  let total = hist.reduce((a, b) => a + b, 0);
  if (total === 0) {
    hist = histogram(flat);
    total = hist.reduce((a, b) => a + b, 0);
  }
  // cdf in float32, as numpy computes cumsum(float32 hist) / float32 sum
  const cdf = new Float64Array(256);
  let run = 0;
  for (let i = 0; i < 256; i++) {
    run = Math.fround(run + hist[i]);
    cdf[i] = Math.fround(run / total);
  }
  const paper = searchsorted(cdf, 0.5);
  const byDeviation = new Float64Array(256);
  for (let i = 0; i < 256; i++) byDeviation[Math.abs(i - paper)] += hist[i];
  const cum = new Float64Array(256);
  let acc = 0;
  for (let i = 0; i < 256; i++) cum[i] = (acc += byDeviation[i]) / total;
  const mad = searchsorted(cum, 0.5);
  const noise = 1.4826 * mad;
  const weak = paper - Math.max(5 * noise, 0.08 * paper, 6);
  const darkest = searchsorted(cdf, 0.002);
  const strong = Math.min(weak - 1, Math.max((paper + darkest) / 2, paper - STRONG * (paper - weak)));
  return [weak, strong, paper, darkest];
}

// --- components ---------------------------------------------------------------------------------

const GRID_STRONG = T["GRID_STRONG"];  // in a printed grid, certain ink is this many times as far below the paper as faint ink
const MAX_CLUTTER = T["MAX_CLUTTER"];  // digits on paper measure < 0.01 (on squared paper up to 0.05), desk texture more
const MIN_LIGHT = T["MIN_LIGHT"];  // paper under a shadow keeps > 60% of the light; a dark desk 15-30%

// A candidate digit on the page: connected components (ids into the label image) and a box.
export class Blob {
  constructor(ids, x0, y0, x1, y1, area, touches_edge = false, clutter = 0.0, cell = null) {
    this.ids = ids;
    this.x0 = x0;
    this.y0 = y0;
    this.x1 = x1;
    this.y1 = y1;
    this.area = area;
    this.touches_edge = touches_edge;
    this.clutter = clutter;   // share of the surroundings covered by stray marks (desk texture)
    this.cell = cell;         // the rules around it in a table or grid: [[top, bottom], [left, right]]
  }

  get w() { return this.x1 - this.x0; }

  get h() { return this.y1 - this.y0; }

  union(other) {
    return new Blob(this.ids.concat(other.ids), Math.min(this.x0, other.x0), Math.min(this.y0, other.y0),
                    Math.max(this.x1, other.x1), Math.max(this.y1, other.y1), this.area + other.area,
                    this.touches_edge || other.touches_edge, Math.max(this.clutter, other.clutter));
  }
}

// What the classifier needs to cut crops: the label image (CV_32SC1) and the flattened page (CV_8UC1).
export class Ink {
  // `ruled`: where rules were taken out (a Uint8Array copy, null without rules); `bridge`: the gap
  // a stroke crossing one bridges (see ink.Ink)
  constructor(labels, flat, paper, darkest, ruled = null, bridge = 0) {
    this.labels = labels;
    this.flat = flat;
    this.paper = paper;
    this.darkest = darkest;
    this.ruled = ruled;
    this.bridge = bridge;
  }

  delete() {
    for (const m of [this.labels, this.flat]) if (m && !m.isDeleted()) m.delete();
  }
}

export class Geometry {
  constructor(height, stroke, shape) {
    this.height = height;   // typical digit height on the page (px)
    this.stroke = stroke;   // typical stroke width (px)
    this.shape = shape;     // page [h, w]
  }
}

// The segmentation of a page (see ink.segment_ink): {flat, mask, labels (Mats), stats
// (Int32Array n*5), hit (Uint8Array n), paper, darkest, on_paper (Mat), rules}; `.delete()`
// frees its Mats but for those taken out (set to null) by the caller.
class Segmentation {
  delete() {
    for (const key of ["flat", "mask", "labels", "on_paper"]) {
      if (this[key] && !this[key].isDeleted()) this[key].delete();
    }
    if (this.rules) this.rules.delete();
  }
}

// Threshold the flattened page; take out its rules (when `ruleHeight`); label its components;
// mark those holding certain ink. `sheet`: the 0/1 mask of a sheet found in part, or null;
// `grid`: a printed grid's border ([[x, y]] page pixels) that is paper however dark, or null.
export function segmentInk(page, window, ruleHeight = 0.0, sheet = null, grid = null) {
  const s = new Segmentation();
  const tmp = new Scratch();
  try {
    let light, d;
    [s.flat, light, d] = flattenLight(page, window);
    tmp.add(light);
    // writing is on paper: where the light is far below the brightest paper of the photo there
    // is a desk around a sheet that was not found
    const lit = tmp.add(atLeast(light, MIN_LIGHT * percentileU8(light, 98)));
    s.on_paper = new cv.Mat();
    cv.resize(lit, s.on_paper, new cv.Size(page.cols, page.rows), 0, 0, cv.INTER_NEAREST);
    if (sheet) cv.bitwise_and(s.on_paper, sheet, s.on_paper);
    let inside = null;
    if (grid) {                        // a grid is printed on paper, in a shadow or not
      const corners = tmp.add(cv.matFromArray(grid.length, 1, cv.CV_32SC2, grid.flat().map((v) => npRound(v))));
      const polys = new cv.MatVector();
      polys.push_back(corners);
      inside = tmp.add(cv.Mat.zeros(page.rows, page.cols, cv.CV_8UC1));
      cv.fillPoly(inside, polys, new cv.Scalar(1));
      cv.bitwise_or(s.on_paper, inside, s.on_paper);
      polys.delete();
    }
    const [weak, strong, paper, darkest] = inkThreshold(s.flat, s.on_paper);
    [s.paper, s.darkest] = [paper, darkest];
    s.mask = below(s.flat, weak);
    s.rules = new Rules();
    if (ruleHeight) {
      let [clean, rules] = findRules(s.mask, ruleHeight);
      s.mask.delete();
      s.mask = clean;
      s.rules = rules;
      [clean, rules.boxes] = findBoxes(s.mask, ruleHeight);
      s.mask.delete();
      s.mask = clean;
    }
    s.labels = new cv.Mat();
    const stats = tmp.mat(), centroids = tmp.mat();
    const n = cv.connectedComponentsWithStats(s.mask, s.labels, stats, centroids, 8, cv.CV_32S);
    s.stats = Int32Array.from(stats.data32S.subarray(0, 5 * n));
    s.hit = new Uint8Array(n);
    const L = s.labels.data32S, F = s.flat.data;
    for (let i = 0; i < L.length; i++) if (F[i] < strong) s.hit[L[i]] = 1;   // hysteresis
    if (inside) {                      // a grid's cells hold writing: faint pencil there is too
      const seed = Math.min(weak - 1, Math.max(strong, paper - GRID_STRONG * (paper - weak)));
      const I = inside.data;
      for (let i = 0; i < L.length; i++) if (I[i] && F[i] < seed) s.hit[L[i]] = 1;
    }
    s.hit[0] = 0;
    return s;
  } catch (e) {
    s.delete();
    throw e;
  } finally {
    tmp.free();
  }
}

// np.percentile of a uint8 Mat's pixels (from their histogram: the same sorted values).
function percentileU8(mat, q) {
  const hist = histogram(mat);
  const n = mat.rows * mat.cols;
  const virtual = (q / 100) * (n - 1);
  const lo = Math.floor(virtual), hi = Math.min(lo + 1, n - 1);
  const at = (k) => {                     // the k-th smallest value
    let c = 0;
    for (let v = 0; v < 256; v++) if ((c += hist[v]) > k) return v;
    return 255;
  };
  const x = at(lo), y = at(hi), t = virtual - lo, diff = y - x;
  return t >= 0.5 ? y - diff * (1 - t) : x + diff * t;   // numpy's lerp
}

// cv2.morphologyEx(image, op, getStructuringElement(shape, (k, k))) in place, the border ignored
// (OpenCV's default). An ellipse is done row by row of the kernel, each row a horizontal run (a
// separable rectangle, fast in OpenCV.js, whose generic kernels are not vectorised): the same
// max and min over the same pixels, several times faster.
export function morphology(image, op, shape, k) {
  const tmp = new Scratch();
  try {
    const anchor = new cv.Point(-1, -1), border = cv.morphologyDefaultBorderValue();
    if (shape !== cv.MORPH_ELLIPSE) {
      const kernel = tmp.add(cv.getStructuringElement(shape, new cv.Size(k, k)));
      cv.morphologyEx(image, image, op, kernel, anchor, 1, cv.BORDER_CONSTANT, border);
      return;
    }
    const kernel = tmp.add(cv.getStructuringElement(cv.MORPH_ELLIPSE, new cv.Size(k, k)));
    const K = kernel.data, a = k >> 1;
    const runs = [];                                 // per kernel row: [dy, first dx, last dx] or none
    for (let r = 0; r < k; r++) {
      let c0 = -1, c1 = -1;
      for (let c = 0; c < k; c++) if (K[r * k + c]) { if (c0 < 0) c0 = c; c1 = c; }
      if (c0 >= 0) runs.push([r - a, c0 - a, c1 - a]);
    }
    const steps = op === cv.MORPH_CLOSE ? [true, false] : op === cv.MORPH_OPEN ? [false, true]
      : op === cv.MORPH_DILATE ? [true] : [false];
    for (const grow of steps) {
      const out = tmp.add(grow ? cv.Mat.zeros(image.rows, image.cols, image.type())
                               : new cv.Mat(image.rows, image.cols, image.type(), new cv.Scalar(255)));
      const byRun = new Map();
      for (const [dy, d0, d1] of runs) {
        const key = `${d0},${d1}`;
        let line = byRun.get(key);
        if (!line) {                                 // the horizontal max (min) over x + d0 .. x + d1
          line = tmp.mat();
          const run = tmp.add(cv.Mat.ones(1, d1 - d0 + 1, cv.CV_8U));
          (grow ? cv.dilate : cv.erode)(image, line, run, new cv.Point(-d0, 0), 1, cv.BORDER_CONSTANT, border);
          byRun.set(key, line);
        }
        // out(y) = max(out(y), line(y + dy)) where y + dy lies in the image
        const y0 = Math.max(0, -dy), y1 = Math.min(image.rows, image.rows - dy);
        if (y1 <= y0) continue;
        const to = out.roi(new cv.Rect(0, y0, image.cols, y1 - y0));
        const from = line.roi(new cv.Rect(0, y0 + dy, image.cols, y1 - y0));
        (grow ? cv.max : cv.min)(to, from, to);
        to.delete();
        from.delete();
      }
      out.copyTo(image);
    }
  } finally {
    tmp.free();
  }
}

const SHEET_MIN = T["SHEET_MIN"];  // a sheet found in part covers at least half the view
const DESK_LIGHT = T["DESK_LIGHT"];  // and what lies around it is darker than the sheet
const DESK_SMOOTH = T["DESK_SMOOTH"];  // and textured (under this share smooth): wood, fabric, not paper in shadow

// {t: thumbnail (CV_32FC1), s: its scale, smooth: where it is smooth (0/1 CV_8UC1), contour: the
// largest bright and smooth region's contour (CV_32SC2) or null, delete()}, or null for a tiny
// image: see ink.bright_region. `kernel`: the shape that closes and opens the region.
export function brightRegion(gray, kernel = cv.MORPH_ELLIPSE) {
  const h = gray.rows, w = gray.cols;
  const s = Math.min(1.0, 320 / Math.max(h, w));
  const tmp = new Scratch();
  let thumb = null;
  try {
    thumb = tmp.add(resizeArea(gray, [Math.max(1, round(w * s)), Math.max(1, round(h * s))]));
    if (Math.min(thumb.rows, thumb.cols) < 16) return null;
    const t = new cv.Mat();
    thumb.convertTo(t, cv.CV_32F);
    const found = { t, s, smooth: null, contour: null, delete() {
      for (const m of [this.t, this.smooth, this.contour]) if (m && !m.isDeleted()) m.delete();
    } };
    const mean = tmp.mat(), sq = tmp.mat(), meanSq = tmp.mat();
    cv.blur(t, mean, new cv.Size(5, 5), new cv.Point(-1, -1), cv.BORDER_DEFAULT);
    cv.multiply(t, t, sq);
    cv.blur(sq, meanSq, new cv.Size(5, 5), new cv.Point(-1, -1), cv.BORDER_DEFAULT);
    const blurred = tmp.mat(), bright = tmp.mat();
    cv.GaussianBlur(thumb, blurred, new cv.Size(5, 5), 0, 0, cv.BORDER_DEFAULT);
    cv.threshold(blurred, bright, 0, 255, cv.THRESH_BINARY + cv.THRESH_OTSU);
    found.smooth = new cv.Mat(t.rows, t.cols, cv.CV_8UC1);
    const region = tmp.add(new cv.Mat(t.rows, t.cols, cv.CV_8UC1));
    const f = Math.fround, M = mean.data32F, Q = meanSq.data32F, B = bright.data;
    const S = found.smooth.data, R = region.data;
    const share = f(0.04);
    for (let i = 0; i < M.length; i++) {   // sqrt(max(blur(t*t) - mean*mean, 0)) < 0.04 * max(mean, 1), in float32
      const variance = f(Q[i] - f(M[i] * M[i]));
      const smooth = f(Math.sqrt(Math.max(variance, 0))) < f(share * Math.max(M[i], 1)) ? 1 : 0;
      S[i] = smooth;
      R[i] = B[i] > 0 && smooth ? 255 : 0;
    }
    morphology(region, cv.MORPH_CLOSE, kernel, 15);
    morphology(region, cv.MORPH_OPEN, kernel, 9);
    found.contour = largestContour(region);
    return found;
  } finally {
    tmp.free();
  }
}

// The largest outer contour of a 0/1 or 0/255 mask (a Mat, the caller's), or null:
// max(cv2.findContours(mask, RETR_EXTERNAL, ...)[0], key=cv2.contourArea), the first largest.
export function largestContour(mask) {
  const contours = new cv.MatVector(), hierarchy = new cv.Mat();
  try {
    cv.findContours(mask, contours, hierarchy, cv.RETR_EXTERNAL, cv.CHAIN_APPROX_SIMPLE);
    let best = -1, bestArea = -Infinity;
    for (let i = 0; i < contours.size(); i++) {
      const c = contours.get(i);
      const area = cv.contourArea(c, false);
      if (area > bestArea) [best, bestArea] = [i, area];
      c.delete();
    }
    return best >= 0 ? contours.get(best) : null;
  } finally {
    contours.delete();
    hierarchy.delete();
  }
}

// Where the sheet is (a 0/1 Mat of page's size) when its edges run out of the view but it
// clearly stands above a darker, textured desk, else null: see ink.sheet_region.
export function sheetRegion(page) {
  const found = brightRegion(page, cv.MORPH_RECT);
  if (found === null) return null;
  const tmp = new Scratch();
  try {
    if (found.contour === null) return null;
    const { t, smooth, contour } = found;
    const hull = tmp.add(cv.Mat.zeros(t.rows, t.cols, cv.CV_8UC1));
    const points = tmp.mat();
    cv.convexHull(contour, points, false, true);
    const polys = new cv.MatVector();
    polys.push_back(points);
    cv.fillPoly(hull, polys, new cv.Scalar(1));
    polys.delete();
    const inside = cv.countNonZero(hull), size = t.rows * t.cols;
    if (inside / size < SHEET_MIN || inside === size) return null;
    const outsideMask = tmp.mat();
    cv.threshold(hull, outsideMask, 0, 1, cv.THRESH_BINARY_INV);
    const lightOut = cv.mean(t, outsideMask)[0], lightIn = cv.mean(t, hull)[0];
    const smoothOut = cv.mean(smooth, outsideMask)[0];
    if (lightOut > DESK_LIGHT * lightIn || smoothOut > DESK_SMOOTH) return null;
    const out = new cv.Mat();
    cv.resize(hull, out, new cv.Size(page.cols, page.rows), 0, 0, cv.INTER_NEAREST);
    return out;
  } finally {
    tmp.free();
    found.delete();
  }
}

// pieces beyond which a view is noise (above page.NOISE's limit for any photo)
const MAX_PIECES = T["MAX_PIECES"];
const EDGE_RULE = T["EDGE_RULE"];  // a vertical rule this many digit heights from the page's side is its edge

// [blobs, Ink, Geometry, Rules, dropped ([blob, kind] pairs)]: candidate digits on the page,
// see ink.find_blobs. The caller deletes the Ink and the Rules (`.delete()`).
export function findBlobs(page, ruleHeight = 0.0, grid = null) {
  const h = page.rows, w = page.cols;
  let window = Math.max(h, w) / 25;
  if (ruleHeight) window = Math.min(window, WINDOW * ruleHeight);   // the writing's scale is known
  const sheet = sheetRegion(page);
  let seg = null;
  try {
    seg = segmentInk(page, window, ruleHeight, sheet, grid);
    let stroke = strokeEstimate(seg.labels, seg.stats, seg.hit);
    if (4 * stroke > window) {     // strokes as wide as the window: erase them with a wider one
      window = 6 * stroke;
      seg.delete();
      seg = null;
      seg = segmentInk(page, window, ruleHeight, sheet, grid);
      stroke = strokeEstimate(seg.labels, seg.stats, seg.hit);
    }
    const { stats, hit } = seg;
    const n = hit.length;
    let blobs = [];
    const least = Math.max(4, stroke * stroke);
    for (let i = 0; i < n; i++) {
      const [x, y, bw, bh, area] = stats.subarray(5 * i, 5 * i + 5);
      if (!(hit[i] && area >= least)) continue;
      const edge = x === 0 || y === 0 || x + bw === w || y + bh === h;
      blobs.push(new Blob([i], x, y, x + bw, y + bh, area, edge));
    }
    const dropped = [];
    const P = seg.on_paper.data;
    blobs = keep(blobs, (b) => P[((b.y0 + b.y1) >> 1) * w + ((b.x0 + b.x1) >> 1)] !== 0, "desk", dropped);
    const rules = seg.rules;
    if (rules.mask && tableColumns(rules, ruleHeight || 0, w) >= 3) {
      blobs = keep(blobs, (b) => !cellWall(b, rules.mask, stroke), "rule", dropped);
    }
    // the typical digit height: area-weighted median over blobs that are not page edges
    let height = typicalHeight(blobs, h, w);
    // marks amid stray marks are texture (a desk, fabric), not writing: drop them, measure again
    measureClutter(blobs, seg.labels, stats, height);
    blobs = keep(blobs, (b) => b.clutter <= MAX_CLUTTER, "texture", dropped);
    height = typicalHeight(blobs, h, w);
    const geom = new Geometry(height, stroke, [h, w]);
    // the sheet's edge, shadows and desk: too tall for a digit, large or a sliver, cut by the border
    blobs = keep(blobs, (b) => b.h <= 3.5 * height, "too tall", dropped);
    blobs = keep(blobs, (b) => !(b.touches_edge && (Math.max(b.h, b.w) > 1.5 * height
                                                    || Math.min(b.h, b.w) < 0.2 * height)), "edge", dropped);
    if (blobs.length <= MAX_PIECES) blobs = mergePieces(blobs, geom);   // more is noise (page.js reports it)
    blobs = keep(blobs, (b) => Math.max(b.h, b.w) >= 0.25 * height, "speck", dropped);
    const ink = new Ink(seg.labels, seg.flat, seg.paper, seg.darkest,
                        rules.mask ? rules.mask.data.slice() : null, rules.bridge);
    seg.labels = seg.flat = null;
    seg.rules = null;
    return [blobs, ink, geom, rules, dropped];
  } finally {
    if (seg) seg.delete();
    if (sheet) sheet.delete();
  }
}

// Whether any pixel of a uint8 Mat is set in rows y0..y1, columns x0..x1 (clipped as numpy slices).
function anyIn(mat, y0, y1, x0, x1) {
  const rows = mat.rows, cols = mat.cols, D = mat.data;
  const clip = (v, n) => (v < 0 ? Math.max(0, v + n) : Math.min(v, n));
  [y0, y1, x0, x1] = [clip(y0, rows), clip(y1, rows), clip(x0, cols), clip(x1, cols)];
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) if (D[y * cols + x]) return true;
  return false;
}

// Whether b is a short rule between two others (a table's cell wall): see ink.cell_wall.
export function cellWall(b, rules, stroke) {
  if (b.w > 0.3 * b.h) return false;
  const reach = int(Math.ceil(stroke)) + 2;
  const x0 = Math.max(0, b.x0 - 1), x1 = b.x1 + 1;
  const above = anyIn(rules, Math.max(0, b.y0 - reach), b.y0 + 1, x0, x1);
  const under = anyIn(rules, Math.max(0, b.y1 - 1), b.y1 + reach, x0, x1);
  return above && under;
}

// In how many places (more than a digit height apart) the page's vertical rules stand: cell walls
// are looked for with three or more; a rule within EDGE_RULE digit heights of the page's left or
// right side is the sheet's edge (see table_columns).
export function tableColumns(rules, height, width) {
  const edge = EDGE_RULE * Math.max(height, 1);
  const xs = rules.vertical.map((r) => r.at).filter((x) => edge < x && x < width - edge)
    .sort((a, b) => a - b);
  let n = 0, last = null;
  for (const x of xs) {
    if (last === null || x - last > Math.max(height, 1)) n += 1;
    last = x;
  }
  return n;
}

// The blobs that pass `test`; the others go to `dropped` as [blob, kind].
export function keep(blobs, test, kind, dropped) {
  const out = [];
  for (const b of blobs) (test(b) ? out.push(b) : dropped.push([b, kind]));
  return out;
}

// Area-weighted median height of the blobs that are not page edges, rules or grids.
export function typicalHeight(blobs, h, w) {
  let inner = blobs.filter((b) => !b.touches_edge && b.h < 0.5 * h && b.w < 0.5 * w
                                  && b.w < 6 * b.h && b.h < 6 * b.w);
  if (!inner.length) inner = blobs;
  return inner.length ? weightedMedian(inner.map((b) => b.h), inner.map((b) => b.area)) : 0.0;
}

export function weightedMedian(values, weights) {
  const order = values.map((_, i) => i).sort((i, j) => values[i] - values[j] || i - j);
  const cum = new Float64Array(order.length);
  let acc = 0;
  order.forEach((k, i) => { cum[i] = acc += weights[k]; });
  return values[order[searchsorted(cum, cum[cum.length - 1] / 2)]];
}

// Set each blob's clutter: the share of the band around it covered by small marks.
export function measureClutter(blobs, labels, stats, height) {
  if (!blobs.length) return;
  const n = stats.length / 5;
  const small = new Uint8Array(n);
  for (let i = 1; i < n; i++) small[i] = Math.max(stats[5 * i + 2], stats[5 * i + 3]) < height / 3 ? 1 : 0;
  const tmp = new Scratch();
  try {
    const marked = tmp.add(perLabel(small, labels));
    const sums = tmp.mat();
    cv.integral(marked, sums, cv.CV_32S);
    const I = sums.data32S, stride = sums.cols;
    const h = labels.rows, w = labels.cols;
    const count = (x0, y0, x1, y1) => I[y1 * stride + x1] - I[y0 * stride + x1] - I[y1 * stride + x0] + I[y0 * stride + x0];
    const m = Math.max(2, int(0.5 * height));
    for (const b of blobs) {
      const x0 = Math.max(0, b.x0 - m), y0 = Math.max(0, b.y0 - m), x1 = Math.min(w, b.x1 + m), y1 = Math.min(h, b.y1 + m);
      const ring = (x1 - x0) * (y1 - y0) - b.w * b.h;
      b.clutter = (count(x0, y0, x1, y1) - count(b.x0, b.y0, b.x1, b.y1)) / Math.max(1, ring);
    }
  } finally {
    tmp.free();
  }
}

// Mean stroke width of the ink (2 * area / boundary over the inner components of certain ink).
export function strokeEstimate(labels, stats, hit) {
  const h = labels.rows, w = labels.cols;
  const n = hit.length;
  const inner = new Uint8Array(n);
  let area = 0;
  for (let i = 0; i < n; i++) {
    const [x, y, bw, bh, a] = stats.subarray(5 * i, 5 * i + 5);
    inner[i] = hit[i] && x > 0 && y > 0 && x + bw < w && y + bh < h && bw < w / 2 && bh < h / 2 ? 1 : 0;
    if (inner[i]) area += a;
  }
  if (area === 0) return 1.0;
  // a pixel that survives a 3x3 erosion of all the ink lies inside one component
  const tmp = new Scratch();
  try {
    const inked = tmp.add(new cv.Mat(h, w, cv.CV_8UC1));
    let L = labels.data32S, D = inked.data;
    for (let i = 0; i < L.length; i++) D[i] = L[i] > 0 ? 1 : 0;
    const core = tmp.mat();
    const kernel = tmp.add(cv.Mat.ones(3, 3, cv.CV_8U));
    cv.erode(inked, core, kernel, new cv.Point(-1, -1), 1, cv.BORDER_CONSTANT, cv.morphologyDefaultBorderValue());
    L = labels.data32S;
    const C = core.data;
    let eroded = 0;
    for (let i = 0; i < C.length; i++) if (C[i] && inner[L[i]]) eroded++;
    return Math.max(1.0, 2.0 * area / Math.max(1, area - eroded));
  } finally {
    tmp.free();
  }
}

// Whether b is another piece of a's digit: see ink.mergeable.
export function mergeable(a, b, H, overlap = 0.5) {
  const shared = Math.min(a.x1, b.x1) - Math.max(a.x0, b.x0);
  const gap = Math.max(a.y0, b.y0) - Math.min(a.y1, b.y1);
  const height = Math.max(a.y1, b.y1) - Math.min(a.y0, b.y0);
  const width = Math.max(a.x1, b.x1) - Math.min(a.x0, b.x0);
  return (shared >= overlap * Math.min(a.w, b.w) && gap <= 0.3 * H
          && height <= 1.25 * Math.max(H, a.h, b.h) && width <= 1.1 * Math.max(H, a.w, b.w));
}

// Merge blobs that are pieces of one digit: see ink.merge_pieces.
export function mergePieces(blobs, geom) {
  const H = geom.height;
  blobs = sorted(blobs, (b) => b.x0);
  const boxOf = (b) => [b.x0, b.x1, b.y0, b.y1];
  let boxes = blobs.map(boxOf);
  for (let i = 0; i < blobs.length; i++) {
    if (blobs[i] === null) continue;
    let grew = true;
    while (grew) {                                     // it grew: look again
      grew = false;
      const a = boxes[i];
      for (let j = i + 1; j < blobs.length; j++) {
        const q = boxes[j];
        // later blobs that start within it and lie near it in height (mergeable's own tests)
        if (!(q[0] < a[1] && q[1] > q[0] && q[2] <= a[3] + 0.3 * H && q[3] >= a[2] - 0.3 * H)) continue;
        if (blobs[j] !== null && mergeable(blobs[i], blobs[j], H)) {
          blobs[i] = blobs[i].union(blobs[j]);
          boxes[i] = boxOf(blobs[i]);
          blobs[j] = null;
          boxes[j] = [0, 0, 0, 0];
          grew = true;
          break;
        }
      }
    }
  }
  const alive = blobs.map((b, k) => k).filter((k) => blobs[k] !== null);
  blobs = alive.map((k) => blobs[k]);
  boxes = alive.map((k) => boxes[k]);
  for (const bar of blobs.filter((b) => b.h < 0.4 * H && b.w >= 1.5 * b.h)) {
    // candidates: overlapping the bar in x and near it in y
    const partners = [];
    for (let k = 0; k < boxes.length; k++) {
      const q = boxes[k];
      if (q[0] < bar.x1 && q[1] > bar.x0 && q[3] - q[2] >= 0.4 * H && q[2] < bar.y1 + 0.3 * H && q[3] > bar.y0 - 0.3 * H
          && blobs[k] !== bar && mergeable(blobs[k], bar, H, 0.15)) partners.push(blobs[k]);
    }
    if (partners.length) {
      const best = maxBy(partners, (b) => Math.min(b.x1, bar.x1) - Math.max(b.x0, bar.x0));
      const k = blobs.indexOf(best), gone = blobs.indexOf(bar);
      blobs[k] = best.union(bar);
      boxes[k] = boxOf(blobs[k]);
      boxes[gone] = [0, 0, 0, 0];                      // out of every later test (x1 > x0 fails)
      blobs[gone] = null;
    }
  }
  return blobs.filter((b) => b !== null);
}
