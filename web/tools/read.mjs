// The node dev loop of the web reader: runs the JS port of runtime/ (web/src/runtime/) on raw
// pixels dumped by Python (web/tools/reference.py) and prints what it read, as JSON.
//
//   node web/tools/read.mjs [--model FILE.onnx] [--crops] [--leaks] [--repeat N] IMAGE.npy...
//
// Each IMAGE.npy (uint8, HxW gray, HxWx3 BGR or HxWx4 RGBA, as numpy.save writes it) gives one
// line of JSON: {"image", "result": readPage's result, "ms"}; --crops adds each digit's 28x28
// input as base64 float32 (`input28`); --leaks adds `heapTop` after each image: where OpenCV.js's
// allocator puts a 48 MB block (it rises when a read leaves Mats undeleted: a leaked 1 MP Mat
// moves it by 1 MB); --repeat reads the list N times. Node has no JPEG decoder that matches cv2's, hence the raw pixels.

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const ROOT = path.dirname(WEB);
const require = createRequire(path.join(WEB, "package.json"));

function fail(message) {
  console.error(`read.mjs: error: ${message}`);
  process.exit(2);
}

// {cv}: OpenCV.js, ready. Its module object has a `then` of its own: a promise resolved with it
// (an async function returning it) never settles, hence the wrapper object.
export async function loadCv() {
  const cv = require("@techstark/opencv-js");
  if (!cv.Mat) await new Promise((resolve) => { cv.onRuntimeInitialized = () => resolve(); });
  return { cv };
}

export async function loadOrt() {
  const ort = await import(require.resolve("onnxruntime-web"));
  ort.env.wasm.numThreads = 1;
  return ort;
}

// A .npy file: {dtype: "<u1" | "<f4" | ..., shape, data: a typed array}.
export function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.toString("latin1", 1, 6) !== "NUMPY") throw new Error(`${file} is not a .npy file`);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString("latin1", start, start + headerLen);
  const dtype = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const shape = (/'shape':\s*\(([^)]*)\)/.exec(header)?.[1] ?? "").split(",").map((s) => s.trim())
    .filter(Boolean).map(Number);
  if (/'fortran_order':\s*True/.test(header)) throw new Error(`${file}: Fortran order is not supported`);
  const bytes = buf.subarray(start + headerLen);
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  const types = { "|u1": Uint8Array, "<u1": Uint8Array, "<f4": Float32Array, "<i4": Int32Array, "<f8": Float64Array };
  if (!types[dtype]) throw new Error(`${file}: dtype ${dtype} is not supported`);
  return { dtype, shape, data: new types[dtype](copy.buffer) };
}

// A cv.Mat (the caller deletes it) of a uint8 .npy image.
export function npyToMat(cv, npy) {
  const [h, w, c = 1] = npy.shape;
  if (npy.dtype.slice(1) !== "u1" || npy.shape.length < 2 || npy.shape.length > 3) {
    throw new Error(`an image is uint8 HxW or HxWxC, got ${npy.dtype} ${JSON.stringify(npy.shape)}`);
  }
  const type = { 1: cv.CV_8UC1, 3: cv.CV_8UC3, 4: cv.CV_8UC4 }[c];
  if (type === undefined) throw new Error(`an image has 1, 3 or 4 channels, got ${c}`);
  const mat = new cv.Mat(h, w, type);
  mat.data.set(npy.data);
  return mat;
}

function base64(floats) {
  return Buffer.from(floats.buffer, floats.byteOffset, floats.byteLength).toString("base64");
}

async function main() {
  const args = process.argv.slice(2);
  let model = path.join(ROOT, "models", "cnn", "model_int8.onnx");
  let crops = false, leaks = false, repeat = 1;
  const images = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--model") model = args[++i];
    else if (args[i] === "--crops") crops = true;
    else if (args[i] === "--leaks") leaks = true;
    else if (args[i] === "--repeat") repeat = Number(args[++i]);
    else if (args[i].startsWith("--")) fail(`unknown option ${args[i]}`);
    else images.push(args[i]);
  }
  if (!images.length) fail("usage: node web/tools/read.mjs [--model FILE.onnx] [--crops] [--leaks] [--repeat N] IMAGE.npy...");
  if (!(Number.isInteger(repeat) && repeat >= 1)) fail("--repeat takes a whole number >= 1");
  if (!fs.existsSync(model)) fail(`${model} does not exist`);
  const { cv } = await loadCv();
  const ort = await loadOrt();
  const { createRecognizer } = await import("../src/runtime/recognizer.js");
  const { readPage } = await import("../src/runtime/page.js");
  const recognizer = await createRecognizer(ort, new Uint8Array(fs.readFileSync(model)));
  for (const [round, file] of Array.from({ length: repeat }, () => images).flat().map((f, i) => [Math.floor(i / images.length), f])) {
    let npy;
    try {
      npy = readNpy(file);
    } catch (e) {
      fail(e.message);
    }
    const image = npyToMat(cv, npy);
    try {
      const t0 = performance.now();
      const result = await readPage(cv, image, recognizer);
      const ms = performance.now() - t0;
      for (const d of result.digits) {
        if (crops) d.input28 = base64(d.input28);
        else delete d.input28;
      }
      const line = { image: file, result, ms, round };
      if (leaks) {
        const block = cv._malloc(48 << 20);
        cv._free(block);
        line.heapTop = block;
      }
      console.log(JSON.stringify(line));
    } finally {
      image.delete();
    }
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
