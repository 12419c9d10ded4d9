// `npm run build`: writes web/dist/, the static site. No bundler: the app's own files as they are,
// the vendor files copied from node_modules, the shipped int8 model, the runtime's tuning values
// (runtime/tuning.json, unchanged: the Python runtime reads the same file), a service worker whose
// precache list carries each file's content hash (a new build is a new cache), and a .gz sibling
// of every compressible file (`edgedigits web` serves it to clients that accept gzip).
//
//   node build.mjs [OUT]        (default: dist)

import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import zlib from "node:zlib";

const WEB = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.dirname(WEB);
const OUT = path.resolve(WEB, process.argv[2] ?? "dist");
const NODE_MODULES = path.join(WEB, "node_modules");

// site path -> source file
const VENDOR = {
  "vendor/ort.wasm.min.mjs": "onnxruntime-web/dist/ort.wasm.min.mjs",
  "vendor/ort-wasm-simd-threaded.mjs": "onnxruntime-web/dist/ort-wasm-simd-threaded.mjs",
  "vendor/ort-wasm-simd-threaded.wasm": "onnxruntime-web/dist/ort-wasm-simd-threaded.wasm",
  "vendor/opencv.js": "@techstark/opencv-js/dist/opencv.js",
};
const SHARED = {
  "models/model_int8.onnx": path.join(ROOT, "models", "cnn", "model_int8.onnx"),
  "runtime/tuning.json": path.join(ROOT, "runtime", "tuning.json"),
};
const COMPRESS = new Set([".html", ".js", ".mjs", ".css", ".json", ".wasm", ".onnx", ".webmanifest", ".svg"]);
const NOT_CACHED = new Set(["sw.js"]);   // the service worker itself is checked by the browser

function fail(message) {
  console.error(`build: error: ${message}`);
  process.exit(1);
}

function walk(dir, base = dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    return e.isDirectory() ? walk(full, base) : [path.relative(base, full).split(path.sep).join("/")];
  });
}

function copy(from, to) {
  if (!fs.existsSync(from)) fail(`${from} is missing (run npm ci in web/, or export the model)`);
  fs.mkdirSync(path.dirname(to), { recursive: true });
  fs.copyFileSync(from, to);
}

fs.rmSync(OUT, { recursive: true, force: true });
const SRC = path.join(WEB, "src");
for (const rel of walk(SRC)) copy(path.join(SRC, rel), path.join(OUT, rel));
for (const [rel, from] of Object.entries(VENDOR)) copy(path.join(NODE_MODULES, from), path.join(OUT, rel));
for (const [rel, from] of Object.entries(SHARED)) copy(from, path.join(OUT, rel));

// The service worker's precache list: every file but itself, with its sha256 (first 16 hex).
const files = walk(OUT).filter((rel) => !NOT_CACHED.has(rel)).sort();
const hashes = Object.fromEntries(files.map((rel) =>
  [rel, createHash("sha256").update(fs.readFileSync(path.join(OUT, rel))).digest("hex").slice(0, 16)]));
const version = createHash("sha256").update(JSON.stringify(hashes)).digest("hex").slice(0, 16);
const sw = path.join(OUT, "sw.js");
if (!fs.existsSync(sw)) fail("src/sw.js is missing");
const precache = `const VERSION = ${JSON.stringify(version)};\nconst PRECACHE = ${JSON.stringify(hashes, null, 1)};\n`;
fs.writeFileSync(sw, precache + fs.readFileSync(sw, "utf8"));
fs.writeFileSync(path.join(OUT, "build.json"), JSON.stringify({ version, files: hashes }, null, 1) + "\n");

let raw = 0, gz = 0;
for (const rel of walk(OUT)) {
  const full = path.join(OUT, rel);
  const data = fs.readFileSync(full);
  raw += data.length;
  if (!COMPRESS.has(path.extname(rel))) { gz += data.length; continue; }
  const packed = zlib.gzipSync(data, { level: 9 });
  if (packed.length < data.length) fs.writeFileSync(full + ".gz", packed);
  gz += Math.min(packed.length, data.length);
}
console.log(`build: ${OUT} version ${version}: ${files.length + 1} files, ${(raw / 1e6).toFixed(2)} MB, ` +
  `${(gz / 1e6).toFixed(2)} MB gzip`);
