// Turn a crop of one handwritten digit into the 28x28 image an MNIST model expects: the port of
// runtime/normalize.py, function by function (see its module doc: fit into 20x20 keeping the
// aspect ratio, anti-aliased, centre of mass at the centre of 28x28, strokes matched to MNIST's).
//
// Crops are cv.Mat (uint8 or float32, one channel; BGR and 4-channel as Python takes them) owned
// by the caller; every Mat made here is deleted here. Float32 arithmetic is done as numpy does it
// (Math.fround at each step), so thresholds land on the same side as in Python.

import { cv, cropMat, useCv } from "./cv.js";
import { TUNING } from "./tuning.js";
import { int, round } from "./np.js";

const T = TUNING["normalize"];
const BOX = T["BOX"], SIZE = T["SIZE"];   // fit into 20x20, centre in 28x28
const MNIST_STROKE = T["MNIST_STROKE"];  // median stroke width of MNIST test digits once fitted in 20x20 (px)
const f32 = Math.fround;

// Mean stroke width of a binary mask (uint8 Mat, non-zero = ink): 2 * area / perimeter.
export function strokeWidth(mask) {
  const area = cv.countNonZero(mask);
  if (area === 0) return 0.0;
  const contours = new cv.MatVector(), hierarchy = new cv.Mat();
  try {
    cv.findContours(mask, contours, hierarchy, cv.RETR_LIST, cv.CHAIN_APPROX_NONE);
    let perimeter = 0;
    for (let i = 0; i < contours.size(); i++) {
      const c = contours.get(i);
      perimeter += cv.arcLength(c, true);
      c.delete();
    }
    return 2.0 * area / Math.max(perimeter, 1.0);
  } finally {
    contours.delete();
    hierarchy.delete();
  }
}

// crops are shrunk to this long side before their strokes are matched (see normalize.py)
const MAX_CROP = T["MAX_CROP_BOXES"] * BOX;

// Background regions enclosed by ink (a 0 or 6 has one, an 8 two); mask: uint8 Mat, 0 = background.
export function countHoles(mask) {
  const background = new cv.Mat(), padded = new cv.Mat(), labels = new cv.Mat();
  try {
    cv.threshold(mask, background, 0, 1, cv.THRESH_BINARY_INV);   // ~mask as 0/1
    cv.copyMakeBorder(background, padded, 1, 1, 1, 1, cv.BORDER_CONSTANT, new cv.Scalar(1));
    const n = cv.connectedComponents(padded, labels, 4, cv.CV_32S);
    return n - 2;                                    // minus the ink (label 0) and the outside
  } finally {
    background.delete();
    padded.delete();
    labels.delete();
  }
}

// uint8 0/1 Mat of a float32 Mat's pixels > t (float32 comparison, as numpy's a > t).
function above(a, t) {
  const out = new cv.Mat(a.rows, a.cols, cv.CV_8UC1);
  const src = a.data32F, dst = out.data;
  for (let i = 0; i < src.length; i++) dst[i] = src[i] > t ? 1 : 0;
  return out;
}

// Python's _adjust_stroke: dilate or erode `ink` (float32 Mat, white on black) so its strokes are
// MNIST-wide after `scale`, as far as that closes no loop and opens none. Returns a new Mat.
function adjustStroke(ink, scale) {
  const mask = above(ink, 0.5);
  try {
    const width = strokeWidth(mask) * scale;        // stroke width once fitted into 20x20
    if (width <= 0) return ink.clone();
    let dilate, grow;
    if (width < 0.75 * MNIST_STROKE) {
      [dilate, grow] = [true, (MNIST_STROKE - width) / scale];
    } else if (width > 1.4 * MNIST_STROKE) {
      [dilate, grow] = [false, Math.min(width - MNIST_STROKE, 0.5 * width) / scale];
    } else {
      return ink.clone();
    }
    let k = int(round(grow));
    const holes = countHoles(mask);
    while (k >= 1) {
      const out = new cv.Mat();
      const kernel = cv.getStructuringElement(cv.MORPH_ELLIPSE, new cv.Size(k + 1, k + 1));
      try {
        const anchor = new cv.Point(-1, -1), border = cv.morphologyDefaultBorderValue();
        if (dilate) cv.dilate(ink, out, kernel, anchor, 1, cv.BORDER_CONSTANT, border);
        else cv.erode(ink, out, kernel, anchor, 1, cv.BORDER_CONSTANT, border);
      } finally {
        kernel.delete();
      }
      if (cv.minMaxLoc(out).maxVal > 0.5) {
        const m = above(out, 0.5);
        const same = countHoles(m) === holes;
        m.delete();
        if (same) return out;
      }
      out.delete();
      k = Math.floor(k / 2);
    }
    return ink.clone();
  } finally {
    mask.delete();
  }
}

// np.median of float32 values, as numpy computes it in float32.
function medianF32(values) {
  const s = Float32Array.from(values).sort();
  const n = s.length, h = n >> 1;
  return n % 2 ? s[h] : f32(f32(s[h - 1] + s[h]) / 2);
}

// The crop as a new float32 one-channel Mat (Python: BGR -> gray, 4 channels -> the first one).
function asFloat(crop) {
  const gray = new cv.Mat(), out = new cv.Mat();
  try {
    const channels = crop.channels();
    if (channels === 3) cv.cvtColor(crop, gray, cv.COLOR_BGR2GRAY);
    else if (channels > 1) cv.extractChannel(crop, gray, 0);
    else crop.copyTo(gray);
    gray.convertTo(out, cv.CV_32F);
    return out;
  } catch (e) {
    out.delete();
    throw e;
  } finally {
    gray.delete();
  }
}

// MNIST-style 28x28 in [0, 1] (a Float32Array of 784, row-major) from a crop of one digit (a cv.Mat,
// binary, grey or BGR). ink: "white" (white ink on black), "dark" (dark ink on light paper) or
// "auto" (the background is the majority of the crop's pixels). matchStroke: scale the stroke
// width to MNIST's.
export function normalizeDigit(cvInstance, crop, ink = "auto", matchStroke = true) {
  if (cvInstance) useCv(cvInstance);
  if (!crop || crop.rows === 0 || crop.cols === 0 || crop.dims > 2) {
    const shape = crop ? [crop.rows, crop.cols, crop.channels()] : [];
    throw new Error(`normalizeDigit takes a 2-D crop, got shape [${shape.join(", ")}]`);
  }
  const out = new Float32Array(SIZE * SIZE);
  const mats = [];
  try {
    let a = asFloat(crop);
    mats.push(a);
    const { minVal: lo, maxVal: hi } = cv.minMaxLoc(a);
    if (hi - lo < 1e-6) return out;
    // ink spans 0..1, like MNIST's 0..255 (float32: a - lo, then times 1 / (hi - lo) as float32)
    const inv = f32(1.0 / (hi - lo)), flo = f32(lo);
    let d = a.data32F;
    for (let i = 0; i < d.length; i++) d[i] = f32(f32(d[i] - flo) * inv);
    if (ink === "dark" || (ink === "auto" && medianF32(d) > 0.5)) {
      for (let i = 0; i < d.length; i++) d[i] = f32(1.0 - d[i]);
    }
    const m = above(a, 0.1);
    const r = cv.boundingRect(m);
    m.delete();
    let { x, y, width: w, height: h } = r;
    a = cropMat(a, x, y, w, h);
    mats.push(a);
    if (Math.max(h, w) > MAX_CROP) {   // a huge mark (a hairball of noise): stroke matching at a bounded size
      const f = MAX_CROP / Math.max(h, w);
      const small = new cv.Mat();
      mats.push(small);
      cv.resize(a, small, new cv.Size(Math.max(1, round(w * f)), Math.max(1, round(h * f))), 0, 0, cv.INTER_AREA);
      a = small;
      [h, w] = [a.rows, a.cols];
    }
    const scale = BOX / Math.max(h, w);
    if (matchStroke) {
      a = adjustStroke(a, scale);
      mats.push(a);
    }
    const nh = Math.max(1, round(h * scale)), nw = Math.max(1, round(w * scale));
    // INTER_AREA averages (anti-aliasing) when shrinking; both keep values within 0..1
    const small = new cv.Mat();
    mats.push(small);
    cv.resize(a, small, new cv.Size(nw, nh), 0, 0, scale < 1 ? cv.INTER_AREA : cv.INTER_LINEAR);
    const mo = cv.moments(small, false);
    const [cx, cy] = mo.m00 > 0 ? [mo.m10 / mo.m00, mo.m01 / mo.m00] : [nw / 2, nh / 2];
    // put the centre of mass at (14, 14), keeping the whole digit inside the 28x28 field
    const x0 = Math.min(Math.max(round(SIZE / 2 - cx), 0), SIZE - nw);
    const y0 = Math.min(Math.max(round(SIZE / 2 - cy), 0), SIZE - nh);
    d = small.data32F;
    for (let r2 = 0; r2 < nh; r2++) out.set(d.subarray(r2 * nw, (r2 + 1) * nw), (y0 + r2) * SIZE + x0);
    return out;
  } finally {
    for (const m of mats) m.delete();
  }
}
