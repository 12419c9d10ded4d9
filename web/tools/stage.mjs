// Replays the stages dumped by web/tools/dump_stage.py through the JS port (rules.js, digits.js)
// and prints, per call, whether the JS output equals Python's (and the first difference).
//
//   node web/tools/stage.mjs DUMP_DIR [STAGE ...]      (stages: find_rules find_boxes
//       writing_angle find_grid group_lines classify_blobs finish_lines; default: all)

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import cvModule from "@techstark/opencv-js";

import { useCv } from "../src/runtime/cv.js";
import * as rules from "../src/runtime/rules.js";
import * as digits from "../src/runtime/digits.js";
import { createRecognizer } from "../src/runtime/recognizer.js";

async function loadCv() {
  let cv = cvModule;
  if (cv instanceof Promise) cv = await cv;
  else if (!cv.Mat) await new Promise((resolve) => { cv.onRuntimeInitialized = resolve; });
  return { cv };           // not cv itself: the Emscripten module is a thenable, await would loop
}

// A .npy file as {shape, dtype, data} (C order; uint8, int32, float32, float64, bool).
export function loadNpy(file) {
  const buf = fs.readFileSync(file);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = (major === 1 ? 10 : 12) + headerLen;
  const header = buf.subarray(major === 1 ? 10 : 12, start).toString("latin1");
  const descr = /'descr':\s*'([^']+)'/.exec(header)[1];
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(",").filter((s) => s.trim()).map(Number);
  const bytes = buf.buffer.slice(buf.byteOffset + start, buf.byteOffset + buf.length);
  const types = { "|u1": Uint8Array, "|b1": Uint8Array, "<i4": Int32Array, "<f4": Float32Array, "<f8": Float64Array, "<i8": BigInt64Array };
  if (!types[descr]) throw new Error(`${file}: dtype ${descr} not handled`);
  return { shape, dtype: descr, data: new types[descr](bytes) };
}

export function npyMat(cv, file) {
  const a = loadNpy(file);
  const type = { "|u1": cv.CV_8UC1, "|b1": cv.CV_8UC1, "<i4": cv.CV_32SC1, "<f4": cv.CV_32FC1 }[a.dtype];
  const m = new cv.Mat(a.shape[0], a.shape[1], type);
  m.data.set(new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength));
  return m;
}

function matDiff(a, b) {          // count of differing pixels of two uint8 Mats (b: npy)
  let n = 0;
  for (let i = 0; i < a.data.length; i++) if (a.data[i] !== b.data[i]) n++;
  return n;
}

function close(a, b, tol = 1e-9) {
  if (typeof a === "number" && typeof b === "number") return Math.abs(a - b) <= tol * Math.max(1, Math.abs(a), Math.abs(b));
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => close(v, b[i], tol));
  if (a && b && typeof a === "object" && typeof b === "object") {
    const keys = Object.keys(b);
    return keys.every((k) => close(a[k], b[k], tol));
  }
  return a === b || (a == null && b == null);
}

function ruleObjects(list) {
  return list.map((r) => new rules.Rule(r.at, r.start, r.end, r.slope, r.width));
}

function rulesPlain(r) {
  const plain = (list) => list.map(({ at, start, end, slope, width }) => ({ at, start, end, slope, width }));
  return { horizontal: plain(r.horizontal), vertical: plain(r.vertical) };
}

class Blob {                      // ink.py's Blob, for replaying without ink.js
  constructor(d) { Object.assign(this, d); }
  get w() { return this.x1 - this.x0; }
  get h() { return this.y1 - this.y0; }
}

let jsMs = 0;                     // the port's own time in the current stage call
const timesJs = {}, timesPy = {};

function timed(f) {
  const t0 = performance.now();
  try {
    return f();
  } finally {
    jsMs += performance.now() - t0;
  }
}

export const STAGES = {
  find_rules(cv, dir, name, d) {
    const mask = npyMat(cv, path.join(dir, `${name}.mask.npy`));
    const [clean, found] = timed(() => rules.findRules(mask, d.height));
    try {
      const want = npyMat(cv, path.join(dir, `${name}.clean.npy`));
      const diff = matDiff(clean, want);
      want.delete();
      const same = close(rulesPlain(found), { horizontal: d.rules.horizontal, vertical: d.rules.vertical });
      return { ok: diff === 0 && same, detail: `clean differs on ${diff} px; rules ${same ? "equal" : "differ"}`,
        js: same ? undefined : rulesPlain(found), py: same ? undefined : d.rules };
    } finally {
      mask.delete();
      clean.delete();
      found.delete();
    }
  },
  find_boxes(cv, dir, name, d) {
    const mask = npyMat(cv, path.join(dir, `${name}.mask.npy`));
    const [out, boxes] = timed(() => rules.findBoxes(mask, d.height));
    try {
      const want = npyMat(cv, path.join(dir, `${name}.out.npy`));
      const diff = matDiff(out, want);
      want.delete();
      const same = close(boxes, d.boxes);
      return { ok: diff === 0 && same, detail: `out differs on ${diff} px; ${boxes.length} boxes ${same ? "equal" : "differ"}` };
    } finally {
      mask.delete();
      out.delete();
    }
  },
  writing_angle(cv, dir, name, d) {
    const mask = npyMat(cv, path.join(dir, `${name}.mask.npy`));
    try {
      const blobs = d.blobs.map((b) => new Blob(b));
      const [skew, doubtful] = timed(() => rules.writingAngle(blobs, mask, d.height, d.flattened));
      return { ok: close(skew, d.skew, 1e-12) && doubtful === d.doubtful, detail: `js ${skew} ${doubtful}, py ${d.skew} ${d.doubtful}` };
    } finally {
      mask.delete();
    }
  },
  quadrilateral(cv, dir, name, d) {
    const contour = cv.matFromArray(d.contour.length, 1, cv.CV_32SC2, d.contour.flat());
    try {
      const quad = timed(() => rules.quadrilateral(contour));
      let ok = close(quad, d.quad, 0);
      if (ok && quad) {
        ok = rules.rectangleLike(quad) === d.rectangle_like && close(rules.orderCorners(quad), d.order_corners, 0);
      }
      return { ok, detail: `js ${JSON.stringify(quad)}, py ${JSON.stringify(d.quad)}` };
    } finally {
      contour.delete();
    }
  },
  rotation(cv, dir, name, d) {
    const [m, size] = timed(() => rules.rotation(d.shape, d.degrees));
    return { ok: close(m, d.m, 0) && close(size, d.size, 0), detail: `size ${size} (py ${d.size})` };
  },
  find_grid(cv, dir, name, d) {
    const r = new rules.Rules(ruleObjects(d.rules.horizontal), ruleObjects(d.rules.vertical));
    const quad = timed(() => rules.findGrid(r, d.shape));
    return { ok: close(quad, d.quad, 1e-7), detail: `js ${JSON.stringify(quad)}, py ${JSON.stringify(d.quad)}` };
  },
};

function rulesFrom(d) {
  if (!d) return null;
  const r = new rules.Rules(ruleObjects(d.horizontal), ruleObjects(d.vertical));
  r.boxes = d.boxes;
  return r;
}

let recognizer = null;

async function getRecognizer() {
  if (!recognizer) {
    const ort = await import("onnxruntime-web");
    ort.env.wasm.numThreads = 1;
    const model = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "models", "cnn", "model_int8.onnx");
    recognizer = await createRecognizer(ort, new Uint8Array(fs.readFileSync(model)));
  }
  return recognizer;
}

function readPlain(r) {
  return { x0: r.x0, y0: r.y0, x1: r.x1, y1: r.y1, line: r.line, odd: r.odd, cell: r.cell, darkness: r.darkness };
}

Object.assign(STAGES, {
  group_lines(cv, dir, name, d) {
    const blobs = d.blobs.map((b) => new Blob(b));
    const rs = rulesFrom(d.rules);
    const found = timed(() => digits.groupLines(blobs, { height: d.height, stroke: d.stroke, shape: d.shape }, d.line_gap, rs));
    const index = new Map(blobs.map((b, k) => [b, k]));
    const js = found.map((ln) => ({ blobs: ln.blobs.map((b) => index.get(b)), top: ln.top, height: ln.height, band: ln.band }));
    const cells = blobs.map((b) => b.cell);
    const ok = close(js, d.lines, 1e-12) && close(cells, d.cells);
    return { ok, detail: `${js.length} lines (py ${d.lines.length})`, js: ok ? undefined : js, py: ok ? undefined : d.lines };
  },
  async classify_blobs(cv, dir, name, d) {
    const rec = await getRecognizer();
    const labels = npyMat(cv, path.join(dir, `${name}.labels.npy`));
    const flat = npyMat(cv, path.join(dir, `${name}.flat.npy`));
    try {
      const lines = d.lines.map((ln) => new digits.Line(ln.blobs.map((b) => new Blob(b)), ln.top, ln.height, ln.band));
      const ruled = loadNpy(path.join(dir, `${name}.ruled.npy`));
      const ink = { labels, flat, paper: d.paper, darkest: d.darkest, bridge: d.bridge,
                    ruled: ruled.shape[0] ? new Uint8Array(ruled.data.buffer, ruled.data.byteOffset, ruled.data.byteLength) : null };
      const t0 = performance.now();
      const reads = await digits.classifyBlobs(lines, ink, { height: d.height }, rec, { split: d.split, match_stroke: d.match_stroke });
      jsMs += performance.now() - t0;
      const crops = loadNpy(path.join(dir, `${name}.crops.npy`)).data;
      let boxes = reads.length === d.reads.length, worstCrop = 0, worstProb = 0, firstBad = -1;
      reads.forEach((r, k) => {
        const p = d.reads[k];
        if (!p) return;
        const same = close(readPlain(r), { x0: p.x0, y0: p.y0, x1: p.x1, y1: p.y1, line: p.line, odd: p.odd, cell: p.cell, darkness: p.darkness }, 1e-6);
        if (!same && firstBad < 0) firstBad = k;
        boxes &&= same;
        for (let i = 0; i < 784; i++) worstCrop = Math.max(worstCrop, Math.abs(r.crop28[i] - crops[k * 784 + i]));
        for (let c = 0; c < p.probs.length; c++) worstProb = Math.max(worstProb, Math.abs(r.probs[c] - p.probs[c]));
      });
      const ok = boxes && worstCrop <= 2 / 255;
      return { ok, detail: `${reads.length} reads (py ${d.reads.length}), crops within ${worstCrop.toFixed(5)}, probs within ${worstProb.toExponential(2)}`,
        js: ok ? undefined : reads.slice(Math.max(0, firstBad), firstBad + 3).map(readPlain),
        py: ok ? undefined : d.reads.slice(Math.max(0, firstBad), firstBad + 3).map(({ probs, ...p }) => p) };
    } finally {
      labels.delete();
      flat.delete();
    }
  },
  finish_lines(cv, dir, name, d) {
    const reads = d.reads.map((r) => new digits.Read(r.x0, r.y0, r.x1, r.y1, Float32Array.from(r.probs), null, r.line, r.odd, r.cell, r.darkness));
    const [ordered, texts, rejected] = timed(() => digits.finishLines(reads, d.labels, { keep_all: d.keep_all, reject: d.reject }, d.none_threshold));
    const index = new Map(reads.map((r, k) => [r, k]));
    const js = { ordered: ordered.map((r) => index.get(r)), lines_out: ordered.map((r) => r.line),
      cells_out: ordered.map((r) => r.cell), texts, rejected: rejected.map(([r, kind]) => [index.get(r), kind]) };
    const ok = close(js, { ordered: d.ordered, lines_out: d.lines_out, cells_out: d.cells_out, texts: d.texts, rejected: d.rejected });
    return { ok, detail: `texts ${JSON.stringify(texts)}`, js: ok ? undefined : js, py: ok ? undefined : d };
  },
});

async function main() {
  const [dir, ...wanted] = process.argv.slice(2);
  if (!dir) {
    console.error("usage: node web/tools/stage.mjs DUMP_DIR [STAGE ...]");
    process.exit(2);
  }
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    console.error(`stage.mjs: error: ${dir} is not a folder (write one with web/tools/dump_stage.py)`);
    process.exit(2);
  }
  const unknown = wanted.filter((s) => !STAGES[s]);
  if (unknown.length) {
    console.error(`stage.mjs: error: unknown stage ${unknown.join(", ")}; known: ${Object.keys(STAGES).join(" ")}`);
    process.exit(2);
  }
  const { cv } = await loadCv();
  useCv(cv);
  let bad = 0, total = 0;
  for (const photo of fs.readdirSync(dir).sort()) {
    const folder = path.join(dir, photo);
    if (!fs.statSync(folder).isDirectory()) continue;
    const names = fs.readdirSync(folder).filter((f) => /^[a-z_]+_\d+\.json$/.test(f)).map((f) => f.slice(0, -5)).sort();
    for (const name of names) {
      const stage = name.replace(/_\d+$/, "");
      if (!STAGES[stage] || (wanted.length && !wanted.includes(stage))) continue;
      const d = JSON.parse(fs.readFileSync(path.join(folder, `${name}.json`), "utf8"));
      jsMs = 0;
      const r = await STAGES[stage](cv, folder, name, d);
      r.detail += ` [js ${jsMs.toFixed(1)} ms, py ${d.ms?.toFixed(1)} ms]`;
      timesJs[stage] = (timesJs[stage] || 0) + jsMs;
      timesPy[stage] = (timesPy[stage] || 0) + (d.ms || 0);
      total++;
      if (!r.ok) bad++;
      console.log(`${r.ok ? "ok  " : "DIFF"} ${photo} ${name}: ${r.detail}`);
      if (!r.ok && r.js) console.log("  js", JSON.stringify(r.js).slice(0, 600), "\n  py", JSON.stringify(r.py).slice(0, 600));
    }
  }
  for (const stage of Object.keys(timesJs)) {
    console.log(`time ${stage}: js ${timesJs[stage].toFixed(0)} ms, py ${timesPy[stage].toFixed(0)} ms`);
  }
  console.log(`${total - bad}/${total} stage calls equal`);
  process.exit(bad ? 1 : 0);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
