// Read every handwritten digit on a photo of paper: page -> ink -> components -> digits -> lines.
// The port of runtime/page.py, function by function, in the same order (see its module doc for
// the stages: prepare, page, measure, ink, lines, classify). `annotate` is not ported: the web
// app draws its boxes on a canvas.
//
//   const result = await readPage(cv, imageMat, recognizer);   // RGBA, BGR or gray cv.Mat
//   result.lines      // ["1247673", "8952481"]
//   result.digits[0]  // {box: [x, y, w, h], line, label, probability, low_confidence, input28}
//
// The result is PageResult.as_dict() of Python (the same keys and rounding) plus `timings` (ms),
// `page` (the sheet's corners in input pixels, or null), `noise` (always present) and each
// digit's `input28` (Float32Array 784: what the model saw). Homographies are 3x3 row-major arrays
// of 9 numbers (float64, as numpy's); point lists are [[x, y], ...] (float32 values where
// Python's are float32). Every Mat made while reading is deleted before readPage returns.

import { cv, useCv } from "./cv.js";
import { CropBudget, TooManyCrops, classifyBlobs, finishLines, groupLines, steadyReads, toDigits, toMarks } from "./digits.js";
import { brightRegion, downscale, findBlobs as inkBlobs, largestContour } from "./ink.js";
import { findGrid, orderCorners, quadrilateral, rectangleLike, rotation, writingAngle } from "./rules.js";
import { TUNING } from "./tuning.js";
import { argmax, clip, diag3, int, inv3, matmul3, median, mod, round, roundTo } from "./np.js";

const DEFAULT = TUNING["page"]["options"];
const f32 = Math.fround;

// Tuning knobs of readPage, with Python's names (see page.Options): every option's default.
export const OPTIONS = Object.freeze({ ...DEFAULT });

// What readPage found, shaped as PageResult.as_dict() (see the module comment).
export class PageResult {
  constructor(digits, lines, timings, page = null, rejected = [], turn = 0.0, noise = false, measured = null) {
    Object.assign(this, { digits, lines, timings, page, rejected, turn, noise, measured });
  }

  // {lines, digits, rejected, turn, noise, timings, page, measured}: as_dict's keys and rounding,
  // plus the timings, the page, each digit's input28 and what to pass the next frame (`measured`).
  asDict() {
    const digits = this.digits.map((d) => {
      const entry = { box: d.box.map((v) => int(v)), line: d.line, label: d.label,
                      probability: roundTo(d.prob, 4), low_confidence: d.low_confidence };
      if (d.cell !== null && d.cell !== undefined) [entry.row, entry.column] = d.cell;
      entry.input28 = d.crop28;
      return entry;
    });
    return { lines: this.lines, digits, turn: this.turn,
             rejected: this.rejected.map((m) => ({ box: m.box.map((v) => int(v)), kind: m.kind })),
             noise: this.noise, timings: this.timings, page: this.page, measured: this.measured };
  }
}

// --- the pipeline --------------------------------------------------------------------------------

class Clock {
  constructor() {
    this.t0 = this.t = performance.now();
    this.timings = {};
  }

  lap(name) {
    const now = performance.now();
    this.timings[name] = roundTo(now - this.t, 3);
    this.t = now;
  }

  total() {
    this.timings.total = roundTo(performance.now() - this.t0, 3);
    return this.timings;
  }
}

// A view with more candidate marks, or a page with more crops to classify, than these is noise
// (see NOISE in page.py). Counted per MP of the photo as read (after max_side).
const NOISE = TUNING["page"]["NOISE"];

// How many crops reading the page may classify (NOISE), for a photo of `mp` megapixels.
export function cropBudget(mp) {
  return int(NOISE["crops"] + NOISE["crops_per_mp"] * mp);
}

// Thrown by findBlobs on a view that holds too many marks to be writing.
class Noise extends Error {}

// Mats, Inks and Rules made while reading a page, deleted together at the end.
class Owned {
  constructor() { this.items = []; }
  add(x) { if (x) this.items.push(x); return x; }
  free() {
    for (const x of this.items) {
      if (typeof x.isDeleted === "function" ? !x.isDeleted() : true) x.delete();
    }
    this.items = [];
  }
}

// ink.findBlobs, bounded: a view with more marks than NOISE allows throws Noise. Its Ink and
// Rules go to `owned`.
export function findBlobs(page, height, mp, owned, grid = null) {
  const found = inkBlobs(page, height, grid);
  owned.add(found[1]);
  owned.add(found[3]);
  if (found[0].length > NOISE["blobs"] + NOISE["blobs_per_mp"] * mp) throw new Noise();
  return found;
}

// All the digits on a photo of paper (a cv.Mat, RGBA, BGR or gray uint8, the caller's), in reading
// order: see read_page. A photo that holds too many marks to be writing comes back with no
// digits and `noise` set. Returns the result's dict (PageResult.asDict()). `measured`: an earlier
// frame's result.measured ({probe, height, turn, shape}, same scene and size): the page's scale
// and turn are taken from it, not measured again (see page.Measured).
export async function readPage(cvInstance, image, recognizer, options = {}, measured = null) {
  if (cvInstance) useCv(cvInstance);
  const t0 = performance.now();
  const unknown = Object.keys(options).filter((k) => !(k in DEFAULT));
  if (unknown.length) {
    throw new Error(`unknown read_page option in [${unknown.sort().join(", ")}]; known: ${Object.keys(DEFAULT).join(", ")}`);
  }
  const opt = { ...DEFAULT, ...options };
  const shape = [image.rows, image.cols];
  const mp = (shape[0] * shape[1]) / 1e6 * Math.min(1.0, opt.max_side / Math.max(Math.max(...shape), 1)) ** 2;
  const owned = new Owned();
  try {
    return (await read(image, recognizer, opt, mp, owned, measured)).asDict();
  } catch (e) {
    if (!(e instanceof Noise || e instanceof TooManyCrops)) throw e;
    return new PageResult([], [], { total: roundTo(performance.now() - t0, 3) }, null, [], 0.0, true).asDict();
  } finally {
    owned.free();
  }
}

async function read(image, recognizer, opt, mp, owned, reuse) {
  const clock = new Clock();
  const [gray, scale] = toGray(image, opt.max_side);
  owned.add(gray);
  clock.lap("prepare");

  const corners = opt.page && Math.min(gray.rows, gray.cols) >= 32 ? findPage(gray) : null;
  clock.lap("page");

  let digits = [], texts = [], marks = [], turn = 0.0, found = null;
  if (Math.min(gray.rows, gray.cols) >= 8) {
    const same = reuse && reuse.shape[0] === gray.rows && reuse.shape[1] === gray.cols;
    const measured = same ? [reuse.probe, reuse.height, reuse.turn, false, null, null]
      : measure(gray, corners, opt, mp, owned);
    const [probe, height, , doubtful, grid, seen] = measured;
    turn = measured[2];
    clock.lap("measure");
    if (height) {
      let zoom = probe * clip(opt.digit_height / height, 0.05, 3.0);
      zoom = Math.min(zoom, Math.max(1.0, opt.max_side / Math.max(gray.rows, gray.cols)));   // small print
      zoom = Math.min(zoom, Math.max(1.5, Math.sqrt(1e6 / (gray.rows * gray.cols))));       // a small photo
      if (0.8 <= zoom / probe && zoom / probe <= 1.25) zoom = probe;   // the probe's scale is close enough
      let page, toGrayPx, blobs, ink, geom, rules, dropped;
      const ruleHeight = opt.rules ? opt.digit_height : 0.0;
      if (zoom === probe && !turn && grid === null && seen) {            // what the probe saw will do
        [page, toGrayPx, [blobs, ink, geom, rules, dropped]] = seen;
      } else {
        [page, toGrayPx] = pageView(gray, corners, zoom, turn, grid);
        owned.add(page);
        [blobs, ink, geom, rules, dropped] = findBlobs(page, ruleHeight, mp, owned, inView(grid, toGrayPx));
      }
      clock.lap("ink");
      let lines = groupLines(blobs, geom, opt.line_gap, rules);
      clock.lap("lines");
      const most = cropBudget(mp);
      const budget = new CropBudget(most);
      let reads = await classifyBlobs(lines, ink, geom, recognizer, opt, budget);
      const first = most - budget.left;           // compare turns on what leaves room for a second pass
      // the direction is asked of the classifier where the marks' lines left it doubtful, or where
      // the reads are mostly 1s, as print on its side reads (see page.py)
      let ask = doubtful;
      if (reads.length && !ask) {
        const c = recognizer.labels.length, probs = new Float64Array(reads.length * c);
        reads.forEach((r, i) => probs.set(r.probs, i * c));
        ask = mostlyOnes(...sureReads(probs, reads.length, recognizer.labels));
      }
      const looks = ask ? await quarterLooks(reads, recognizer, Math.floor((budget.left - first) / 4)) : null;
      const quarter = looks ? bestQuarter(looks) : 0;
      const view = [gray, corners, zoom, grid, opt, recognizer, budget, mp, owned];
      if (quarter) {                              // the writing runs another way: turn it
        turn = mod(turn + 90 * quarter + 180, 360) - 180;
        [toGrayPx, reads, dropped] = await readView(turn, ...view);
      } else if (looks && sidewaysPrint(looks)) {  // print up or down the page: read both ways
        [turn, [toGrayPx, reads, dropped]] = await betterSide(turn, view, [toGrayPx, reads, dropped]);
      }
      let rejected;
      await steadyReads(reads, recognizer, opt, budget);
      [reads, texts, rejected] = finishLines(reads, recognizer.labels, opt, recognizer.none_threshold);
      const fscale = f32(scale);
      const toInput = (points) =>                  // page pixels -> input image pixels
        perspectiveTransform(points, toGrayPx).map(([x, y]) => [f32(x / fscale), f32(y / fscale)]);
      digits = toDigits(image, reads, toInput, recognizer.labels, opt);
      marks = toMarks(image, rejected.concat(dropped.filter(([, kind]) => kind !== "speck")), toInput);
      clock.lap("classify");
      // a grid's corners move with the camera: measured every frame
      if (grid === null) found = { probe, height, turn, shape: [gray.rows, gray.cols] };
    }
  }
  const fscale = f32(scale);
  const pageCorners = corners ? corners.map(([x, y]) => [f32(x / fscale), f32(y / fscale)]) : null;
  return new PageResult(digits, texts, clock.total(), pageCorners, marks, roundTo(turn, 1), false, found);
}

// A grid's corners (gray's pixels) in the view's pixels, grown by `grow` of its size about its
// centre, or null (see page.in_view).
export function inView(grid, toGrayPx, grow = 0.25) {
  if (grid === null) return null;
  const corners = perspectiveTransform(grid, inv3(toGrayPx));
  const cx = corners.reduce((s, [x]) => s + x, 0) / corners.length;
  const cy = corners.reduce((s, [, y]) => s + y, 0) / corners.length;
  return corners.map(([x, y]) => [cx + (x - cx) * (1 + grow), cy + (y - cy) * (1 + grow)]);
}

// [probe zoom, digit height at that zoom (0: no writing), turn in degrees, doubtful, a ruled
// grid's corners in gray's pixels or null, the probe's [page, toGrayPx, found] to be used again
// or null]: see page.measure.
export function measure(gray, corners, opt, mp, owned) {
  let probe = Math.min(1.0, 600 / Math.max(gray.rows, gray.cols));
  let [page, toGrayPx] = pageView(gray, corners, probe);
  owned.add(page);
  let [blobs, ink, geom, rules, dropped] = findBlobs(page, probeRules(page, opt), mp, owned);
  if (probe < 1 && (!blobs.length || geom.height < 8)) {     // too small to measure: look closer
    probe = 1.0;
    [page, toGrayPx] = pageView(gray, corners, probe);
    owned.add(page);
    [blobs, ink, geom, rules, dropped] = findBlobs(page, probeRules(page, opt), mp, owned);
  }
  if (!blobs.length || geom.height < 6 * probe) return [probe, 0.0, 0.0, false, null, null];   // specks
  let turn = 0.0, doubtful = false, grid = null;
  if (opt.deskew) {
    const inkMask = owned.add(new cv.Mat(page.rows, page.cols, cv.CV_8UC1));
    const L = ink.labels.data32S, D = inkMask.data;
    for (let i = 0; i < L.length; i++) D[i] = L[i] > 0 ? 1 : 0;
    if (rules.mask) {                           // the rules taken out are the best guide
      cv.bitwise_or(inkMask, rules.mask, inkMask);
      grid = findGrid(rules, [page.rows, page.cols]);
    }
    [turn, doubtful] = writingAngle(blobs, inkMask, geom.height, corners !== null);
    if (grid !== null) {                        // squared by its own rules
      grid = perspectiveTransform(grid, toGrayPx);
      turn = 0.0;
    }
    if (Math.abs(turn) < 1.0) turn = 0.0;       // not worth a resampling
    else if (grid === null && opt.rules && Math.abs(turn) >= TURNED_GRID) {   // a tilted grid: its rules once turned
      grid = turnedGrid(gray, corners, probe, turn, opt, mp, owned);
      if (grid !== null) turn = 0.0;
    }
  }
  // a page without rules, seen at the right scale, needs no second look
  const seen = rules.truthy() ? null : [page, toGrayPx, [blobs, ink, geom, rules, dropped]];
  return [probe, geom.height, turn, doubtful, grid, seen];
}

// A grid tilted this many degrees or more is looked for again on the page turned square to it.
const TURNED_GRID = TUNING["page"]["TURNED_GRID"];

// The border (gray's pixels) of the largest table or grid on the probe's view turned by `turn`,
// or null: see page.turned_grid.
export function turnedGrid(gray, corners, probe, turn, opt, mp, owned) {
  const [page, toGrayPx] = pageView(gray, corners, probe, turn);
  owned.add(page);
  const rules = findBlobs(page, probeRules(page, opt), mp, owned)[3];
  const grid = rules.mask ? findGrid(rules, [page.rows, page.cols]) : null;
  return grid !== null ? perspectiveTransform(grid, toGrayPx) : null;
}

// The digit height to find rules with before the writing is measured: see page.probe_rules.
export function probeRules(page, opt) {
  const side = Math.max(page.rows, page.cols);
  return opt.rules && side >= 300 ? side / 40 : 0.0;
}

// crop28 (784 floats, row-major) turned k quarter turns counter-clockwise, as np.rot90.
function rot90(crop, k, out, at) {
  const n = 28;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let v;
      if (k === 0) v = crop[i * n + j];
      else if (k === 1) v = crop[j * n + (n - 1 - i)];
      else if (k === 2) v = crop[(n - 1 - i) * n + (n - 1 - j)];
      else v = crop[(n - 1 - j) * n + i];
      out[at + i * n + j] = v;
    }
  }
}

// For each quarter turn (0-3, counter-clockwise) of the page's marks: [confident digits, those
// of them not 1s, mean "none" probability], or null for fewer than 2 marks (see
// page.quarter_looks). Of more than `most` marks, an evenly spaced sample of at most `most`.
export async function quarterLooks(reads, recognizer, most = null) {
  if (reads.length < 2 || (most !== null && most < 2)) return null;
  if (most !== null && reads.length > most) {
    const step = Math.ceil(reads.length / most);
    reads = reads.filter((_, i) => i % step === 0);
  }
  const digits = recognizer.labels.map((label) => /^[0-9]+$/.test(label));
  const c = recognizer.labels.length;
  const looks = [];
  for (let k = 0; k < 4; k++) {
    const crops = new Float32Array(reads.length * 784);
    reads.forEach((r, i) => rot90(r.crop28, k, crops, i * 784));
    const probs = await recognizer.predict(crops);
    let none = 0;
    for (let i = 0; i < reads.length; i++) {
      let rest = 0;
      for (let j = 0; j < c; j++) if (!digits[j]) rest += probs[i * c + j];
      none += rest;
    }
    looks.push([...sureReads(probs, reads.length, recognizer.labels), none / reads.length]);
  }
  return looks;
}

// [confident digits (best digit class over 0.9, "none" left out), those of them that are not 1s]
// among n classifier outputs `probs` (n x classes, row-major): see page.sure_reads.
export function sureReads(probs, n, labels) {
  const digits = labels.map((label) => /^[0-9]+$/.test(label));
  const one = labels.indexOf("1"), c = labels.length;
  let sure = 0, notOnes = 0;
  for (let i = 0; i < n; i++) {
    let best = -Infinity, at = -1;
    for (let j = 0; j < c; j++) {
      const p = probs[i * c + j];
      if (digits[j] && p > best) [best, at] = [p, j];
    }
    if (best > 0.9) {
      sure++;
      if (at !== one) notOnes++;
    }
  }
  return [sure, notOnes];
}

// How many quarter turns make the marks read best (see page.best_quarter).
export function bestQuarter(looks) {
  const counts = looks.map(([sure]) => sure);
  const k = argmax(counts);
  return counts[k] > 1.3 * counts[0] + 2 ? k : 0;
}

// Whether the page's marks are print running up or down the page (see page.sideways_print).
export function sidewaysPrint(looks) {
  const [sure, notOnes, none] = looks[0];
  return mostlyOnes(sure, notOnes) && (looks[1][2] + looks[3][2]) / 2 > none + 0.15;
}

// Confident reads of which at most this share are other digits than 1s are "mostly 1s".
const MOSTLY_ONES = TUNING["page"]["MOSTLY_ONES"];

// Whether confident reads (sureReads: at least 4 of them) are mostly 1s, as print on its side
// reads (see page.mostly_ones).
export function mostlyOnes(sure, notOnes) {
  return sure >= 4 && notOnes <= MOSTLY_ONES * sure;
}

// [toGrayPx, reads, dropped] of the page viewed at `zoom` and turned by `turn` (page.read_view).
async function readView(turn, gray, corners, zoom, grid, opt, recognizer, budget, mp, owned) {
  const [page, toGrayPx] = pageView(gray, corners, zoom, turn, grid);
  owned.add(page);
  const [blobs, ink, geom, rules, dropped] = findBlobs(page, opt.rules ? opt.digit_height : 0.0, mp, owned,
                                                      inView(grid, toGrayPx));
  const lines = groupLines(blobs, geom, opt.line_gap, rules);
  return [toGrayPx, await classifyBlobs(lines, ink, geom, recognizer, opt, budget), dropped];
}

// [turn, readView's result] of the page turned a quarter either way, whichever keeps the surer
// digits; `asIs` with the turn unchanged if the crop budget runs out first (page.better_side).
async function betterSide(turn, view, asIs) {
  const [, , , , opt, recognizer] = view;
  const digit = recognizer.labels.map((label) => /^[0-9]+$/.test(label));
  const tried = [];
  for (const quarter of [1, 3]) {
    const turned = mod(turn + 90 * quarter + 180, 360) - 180;
    let found;
    try {
      found = await readView(turned, ...view);
    } catch (e) {
      if (e instanceof Noise || e instanceof TooManyCrops) return [turn, asIs];
      throw e;
    }
    const copies = found[1].map((r) => Object.assign(Object.create(Object.getPrototypeOf(r)), r));
    const [kept] = finishLines(copies, recognizer.labels, opt, recognizer.none_threshold);
    let score = 0;
    for (const r of kept) {
      let best = -Infinity;
      for (let j = 0; j < digit.length; j++) if (digit[j]) best = Math.max(best, r.probs[j]);
      score += best;
    }
    tried.push([score, turned, found]);
  }
  const best = tried[1][0] > tried[0][0] ? tried[1] : tried[0];   // the first of equals: a quarter left
  return [best[1], best[2]];
}

// --- input --------------------------------------------------------------------------------------

// [gray uint8 Mat (new), scale]: greyscale, downscaled if the long side > maxSide (see to_gray).
// Four channels are RGBA (the browser's ImageData; cv2's BGRA2GRAY on BGRA weighs them alike).
export function toGray(image, maxSide) {
  if (!image || typeof image.type !== "function") throw new Error("readPage takes a cv.Mat image");
  if (image.depth() !== cv.CV_8U) throw new Error(`readPage takes a uint8 image, got cv type ${image.type()}`);
  if (image.rows < 1 || image.cols < 1) throw new Error(`readPage takes an HxW or HxWx3 image, got shape [${image.rows}, ${image.cols}]`);
  const channels = image.channels();
  const code = { 1: null, 3: cv.COLOR_BGR2GRAY, 4: cv.COLOR_RGBA2GRAY }[channels];
  if (code === undefined) throw new Error(`readPage takes 1, 3 or 4 channels, got ${channels}`);
  let gray = new cv.Mat();
  if (code === null) image.copyTo(gray);
  else cv.cvtColor(image, gray, code);
  const h = gray.rows, w = gray.cols;
  const scale = Math.min(1.0, maxSide / Math.max(h, w));
  if (scale < 1) {
    const small = downscale(gray, [Math.max(1, round(w * scale)), Math.max(1, round(h * scale))]);
    gray.delete();
    gray = small;
  }
  return [gray, scale];
}

// --- page ---------------------------------------------------------------------------------------

// cv2.contourArea of float32 corners (OpenCV's own sum, in double).
function contourArea(points) {
  let a = 0;
  let [px, py] = points[points.length - 1];
  for (const [x, y] of points) {
    a += px * y - py * x;
    [px, py] = [x, y];
  }
  return Math.abs(a * 0.5);
}

// Corners ([[x, y]] x 4, gray's pixels, float32) of a bright sheet clearly lit above a darker
// desk, or of a white sheet on a light table, else null: see page.find_page.
export function findPage(gray) {
  const found = brightRegion(gray);
  if (found === null) return null;
  try {
    if (found.contour === null) return null;
    const { t, s, smooth, contour } = found;
    let quad = sheetQuad(t, contour, 0.5);
    for (const split of [false, true]) {          // its smooth margins, then those cut apart by edges
      if (quad !== null) break;
      const cut = split ? smoothBetweenEdges(t, smooth) : null;
      const parts = smoothParts(t, cut || smooth);
      try {
        for (const part of parts) {
          quad = sheetQuad(t, part, LIGHT_TABLE);
          if (quad !== null) break;
        }
      } finally {
        for (const part of parts) part.delete();
        if (cut) cut.delete();
      }
    }
    if (quad === null) return null;
    const fs = f32(s);
    return orderCorners(quad).map(([x, y]) => [f32(x / fs), f32(y / fs)]);
  } finally {
    found.delete();
  }
}

const LIGHT_TABLE = TUNING["page"]["LIGHT_TABLE"];   // a sheet on a light table: what lies around it is at most this bright

// The quadrilateral (thumbnail pixels) of a bright region's contour if it can be a sheet, else
// null (see page.sheet_quad).
function sheetQuad(t, contour, contrast) {
  const quad = quadrilateral(contour);
  if (quad === null || !rectangleLike(quad) || onBorder(quad, [t.rows, t.cols])) return null;
  const area = contourArea(quad);
  const share = area / (t.rows * t.cols);
  if (!(0.04 <= share && share <= 0.9) || cv.contourArea(contour, false) < 0.85 * area) return null;
  const mats = [];
  try {
    const inside = cv.Mat.zeros(t.rows, t.cols, cv.CV_8UC1);
    mats.push(inside);
    const poly = cv.matFromArray(4, 1, cv.CV_32SC2, quad.flatMap(([x, y]) => [round(x), round(y)]));
    mats.push(poly);
    const polys = new cv.MatVector();
    polys.push_back(poly);
    cv.fillPoly(inside, polys, new cv.Scalar(255));
    polys.delete();
    const outside = new cv.Mat();
    mats.push(outside);
    cv.threshold(inside, outside, 0, 255, cv.THRESH_BINARY_INV);
    return cv.mean(t, outside)[0] > contrast * cv.mean(t, inside)[0] ? null : quad;
  } finally {
    for (const m of mats) m.delete();
  }
}

// The smooth mask with the thumbnail's edges taken out (Canny 10/30 grown by a pixel): a new Mat,
// the caller's (see page.sheet_edges).
function smoothBetweenEdges(t, smooth) {
  const t8 = new cv.Mat(), edges = new cv.Mat(), grown = new cv.Mat(), kernel = cv.Mat.ones(3, 3, cv.CV_8U);
  try {
    t.convertTo(t8, cv.CV_8U);
    cv.Canny(t8, edges, 10, 30);
    cv.dilate(edges, grown, kernel);
    const out = smooth.clone();
    const O = out.data, G = grown.data;
    for (let i = 0; i < O.length; i++) if (G[i]) O[i] = 0;
    return out;
  } finally {
    for (const m of [t8, edges, grown, kernel]) m.delete();
  }
}

// The outer contours (Mats, the caller's) of the `most` largest smooth parts of the thumbnail,
// 4-connected, each at least 4% of it, largest first (see page.smooth_parts).
function smoothParts(t, smooth, most = 4) {
  const labels = new cv.Mat(), stats = new cv.Mat(), centroids = new cv.Mat();
  const contours = [];
  try {
    const n = cv.connectedComponentsWithStats(smooth, labels, stats, centroids, 4, cv.CV_32S);
    const S = stats.data32S;
    const area = (i) => S[5 * i + 4];                              // CC_STAT_AREA
    const order = [];
    for (let i = 1; i < n; i++) order.push(i);
    order.sort((a, b) => area(b) - area(a) || a - b);            // stable: equal areas in label order
    const size = t.rows * t.cols;
    for (const i of order.filter((j) => area(j) >= 0.04 * size).slice(0, most)) {
      const mask = new cv.Mat(t.rows, t.cols, cv.CV_8UC1);
      const L = labels.data32S, M = mask.data;      // after the new Mat (wasm memory growth detaches views)
      for (let k = 0; k < L.length; k++) M[k] = L[k] === i ? 1 : 0;
      const contour = largestContour(mask);
      if (contour !== null) contours.push(contour);
      mask.delete();
    }
    return contours;
  } finally {
    labels.delete();
    stats.delete();
    centroids.delete();
  }
}

// Whether two corners lie on the photo's border (the sheet runs out of the picture).
export function onBorder(quad, shape, margin = 0.015) {
  const [h, w] = shape;
  const m = margin * Math.max(h, w);
  return quad.filter(([x, y]) => x <= m || y <= m || x >= w - 1 - m || y >= h - 1 - m).length >= 2;
}

// cv2.perspectiveTransform of float32 points [[x, y]] by a 3x3 (9 numbers): float32 results.
export function perspectiveTransform(points, m) {
  return points.map(([x, y]) => {
    x = f32(x);
    y = f32(y);
    let w = x * m[6] + y * m[7] + m[8];
    if (Math.abs(w) <= 1.1920928955078125e-7) return [0, 0];   // FLT_EPSILON
    w = 1 / w;
    return [f32((x * m[0] + y * m[1] + m[2]) * w), f32((x * m[3] + y * m[4] + m[5]) * w)];
  });
}

// cv2.getPerspectiveTransform of two float32 quads: a 3x3 (9 numbers, float64).
function getPerspectiveTransform(src, dst) {
  const a = cv.matFromArray(4, 1, cv.CV_32FC2, src.flat().map(f32));
  const b = cv.matFromArray(4, 1, cv.CV_32FC2, dst.flat().map(f32));
  let m = null;
  try {
    m = cv.getPerspectiveTransform(a, b);
    return Array.from(m.data64F);
  } finally {
    a.delete();
    b.delete();
    if (m) m.delete();
  }
}

// The median of every `step`-th pixel of every `step`-th row of a uint8 Mat (np.median(a[::s, ::s])).
function medianEvery(mat, step) {
  const values = [];
  const D = mat.data, cols = mat.cols;
  for (let y = 0; y < mat.rows; y += step) for (let x = 0; x < cols; x += step) values.push(D[y * cols + x]);
  return median(values);
}

// [page (a new Mat), homography page px -> gray px]: the page at `zoom`, flattened or squared by
// its grid, turned by `turn` degrees: see page.page_view.
export function pageView(gray, corners, zoom, turn = 0.0, grid = null) {
  const [page, toGray] = grid !== null ? gridView(gray, grid, zoom) : flatView(gray, corners, zoom);
  if (!turn) return [page, toGray];
  const [m, size] = rotation([page.rows, page.cols], turn);
  const paper = medianEvery(page, 4);          // corners outside the photo are blank paper
  const turned = new cv.Mat();
  const affine = cv.matFromArray(2, 3, cv.CV_64F, m.flat());
  try {
    cv.warpAffine(page, turned, affine, new cv.Size(size[0], size[1]), cv.INTER_LINEAR, cv.BORDER_CONSTANT,
                  new cv.Scalar(paper));
  } finally {
    affine.delete();
    page.delete();
  }
  return [turned, matmul3(toGray, inv3([...m[0], ...m[1], 0, 0, 1]))];
}

// np.linalg.norm(b - a) of two points, in float32 (`wide`: float64), as numpy computes it.
function distance(a, b, wide) {
  const f = wide ? (x) => x : f32;
  const dx = f(b[0] - a[0]), dy = f(b[1] - a[1]);
  return f(Math.sqrt(f(f(dx * dx) + f(dy * dy))));
}

// The photo warped so that `grid` (4 corners in gray's pixels) is a rectangle at `zoom`, kept to
// `margin` of the grid's size around it: see page.grid_view.
export function gridView(gray, grid, zoom, margin = 0.6) {
  const h = gray.rows, w = gray.cols;
  if (zoom < 0.75) {                 // shrink first (anti-aliased), then warp
    const small = downscale(gray, [Math.max(1, round(w * zoom)), Math.max(1, round(h * zoom))]);
    try {
      const sx = w / small.cols, sy = h / small.rows;
      const [page, toSmall] = gridView(small, grid.map(([x, y]) => [x / sx, y / sy]), 1.0, margin);
      return [page, matmul3(diag3(sx, sy), toSmall)];
    } finally {
      small.delete();
    }
  }
  const q = grid.map(([x, y]) => [f32(x), f32(y)]);
  const [tl, tr, br, bl] = q;
  const width = f32(f32(f32(zoom) * f32(distance(tl, tr) + distance(bl, br))) / 2);
  const height = f32(f32(f32(zoom) * f32(distance(tl, bl) + distance(tr, br))) / 2);
  const square = [[0, 0], [width, 0], [width, height], [0, height]];
  let toPage = getPerspectiveTransform(q, square);
  const photo = perspectiveTransform([[0, 0], [w, 0], [w, h], [0, h]], toPage);
  const xs = photo.map((p) => p[0]), ys = photo.map((p) => p[1]);
  // a Python float times a float32 is a float32 product (numpy 2): the float is rounded first
  const lo = f32(-margin), hi = f32(1 + margin);
  const x0 = Math.max(Math.min(...xs), f32(lo * width)), y0 = Math.max(Math.min(...ys), f32(lo * height));
  const x1 = Math.min(Math.max(...xs), f32(hi * width)), y1 = Math.min(Math.max(...ys), f32(hi * height));
  toPage = matmul3([1, 0, -x0, 0, 1, -y0, 0, 0, 1], toPage);
  const paper = medianEvery(gray, 8);
  const page = warp(gray, toPage, [Math.max(1, int(f32(x1 - x0))), Math.max(1, int(f32(y1 - y0)))], paper);
  return [page, inv3(toPage)];
}

// page_view before turning: [page (a new Mat), homography page px -> gray px]. `wide`: the
// corners are float64 (Python divides its float32 corners by a float64 shrink).
export function flatView(gray, corners, zoom, wide = false) {
  const h = gray.rows, w = gray.cols;
  if (corners === null) {
    const size = [Math.max(1, round(w * zoom)), Math.max(1, round(h * zoom))];
    if (size[0] === w && size[1] === h) return [gray.clone(), diag3(1, 1)];
    let page;
    if (zoom < 1) {
      page = downscale(gray, size);
    } else {
      page = new cv.Mat();
      cv.resize(gray, page, new cv.Size(size[0], size[1]), 0, 0, cv.INTER_CUBIC);
    }
    return [page, diag3(w / size[0], h / size[1])];
  }
  if (zoom < 0.75) {                 // shrink first (anti-aliased), then warp
    const small = downscale(gray, [Math.max(1, round(w * zoom)), Math.max(1, round(h * zoom))]);
    try {
      const sx = w / small.cols, sy = h / small.rows;
      const [page, toSmall] = flatView(small, corners.map(([x, y]) => [x / sx, y / sy]), 1.0, true);
      return [page, matmul3(diag3(sx, sy), toSmall)];
    } finally {
      small.delete();
    }
  }
  const f = wide ? (x) => x : f32;
  const [tl, tr, br, bl] = corners;
  const width = Math.max(1, round(f(f(f(zoom) * f(distance(tl, tr, wide) + distance(bl, br, wide))) / 2)));
  const height = Math.max(1, round(f(f(f(zoom) * f(distance(tl, bl, wide) + distance(tr, br, wide))) / 2)));
  const dst = [[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]];
  const toPage = getPerspectiveTransform(corners, dst);
  return [warp(gray, toPage, [width, height]), inv3(toPage)];
}

// cv2.warpPerspective(gray, toPage, size, INTER_LINEAR) with the edge replicated, or `border`
// outside the photo, computed as page.warp does it (the same on every machine): points in
// float32 from the inverse homography rounded to float32, fixed to 1/32 px, bilinear weights in
// integers. A new Mat.
export function warp(gray, toPage, size, border = null) {
  const m = inv3(toPage).map(f32);                     // page px -> gray px
  const [W, H] = size;
  const fw = gray.cols + 3, fh = gray.rows + 3;
  const framed = new cv.Mat();
  const out = new cv.Mat(H, W, cv.CV_8UC1);
  try {
    // a frame of one pixel (the edge or `border`) holds every point outside the photo
    cv.copyMakeBorder(gray, framed, 1, 2, 1, 2, border === null ? cv.BORDER_REPLICATE : cv.BORDER_CONSTANT,
                      new cv.Scalar(border === null ? 0 : round(border)));
    const F = framed.data, O = out.data;
    const mx = new Float32Array(W * 3);             // m[i][0] * x, per column
    for (let x = 0; x < W; x++) for (let i = 0; i < 3; i++) mx[3 * x + i] = f32(m[3 * i] * x);
    const fixed = (a, z) => {                     // rint(clip(a / z, -30000, 30000) * 32), in float32
      let q = f32(a / z);
      if (!(q >= -30000)) q = -30000;               // and NaN (np.fmax(nan, -30000))
      else if (q > 30000) q = 30000;
      const v = f32(q * 32);
      let r = Math.round(v);                        // half up; halves to even below
      if (r - v === 0.5 && (r & 1)) r -= 1;
      return r;
    };
    for (let y = 0; y < H; y++) {
      const ay = f32(f32(m[1] * y) + m[2]), by = f32(f32(m[4] * y) + m[5]), zy = f32(f32(m[7] * y) + m[8]);
      for (let x = 0, at = y * W; x < W; x++, at++) {
        const z = f32(zy + mx[3 * x + 2]);
        const X = fixed(f32(ay + mx[3 * x]), z), Y = fixed(f32(by + mx[3 * x + 1]), z);
        const cx = (X >> 5) + 1, cy = (Y >> 5) + 1;
        const x0 = cx < 0 ? 0 : cx > fw - 2 ? fw - 2 : cx, y0 = cy < 0 ? 0 : cy > fh - 2 ? fh - 2 : cy;
        const fx = cx === x0 ? X & 31 : 0, fy = cy === y0 ? Y & 31 : 0;
        const p = y0 * fw + x0;
        const r0 = F[p] * (32 - fx) + F[p + 1] * fx;
        const r1 = F[p + fw] * (32 - fx) + F[p + fw + 1] * fx;
        O[at] = (r0 * (32 - fy) + r1 * fy + 512) >> 10;
      }
    }
    return out;
  } catch (e) {
    out.delete();
    throw e;
  } finally {
    framed.delete();
  }
}
