// The web app: camera, photo and drawing-pad views over the page reader (runtime/page.js) and the
// classifier (runtime/recognizer.js), all on the device. OpenCV.js is loaded by a classic <script>
// in index.html (a UMD file with its wasm inlined); onnxruntime-web runs the shipped int8 model on
// its wasm backend, one thread. `window.edgedigits` is the app's handle for tests and benchmarks.

import * as ort from "./vendor/ort.wasm.min.mjs";
import { createRecognizer } from "./runtime/recognizer.js";
import { clearSamples, listSamples, samplesZip, saveSample } from "./samples.js";

ort.env.wasm.numThreads = 1;
ort.env.wasm.proxy = false;
ort.env.wasm.wasmPaths = new URL("./vendor/", import.meta.url).href;

const $ = (id) => document.getElementById(id);
const COLORS = { ok: "rgb(0,160,0)", low: "rgb(255,140,0)", faint: "rgb(160,90,160)", page: "rgb(0,120,255)" };

function status(text, error = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
}

// --- loading -------------------------------------------------------------------------------------

// window.cv is emscripten's Module: a thenable whose then() calls back once the wasm runtime is up.
// Its `then` is removed before resolving with it (a thenable resolving to itself loops forever).
function loadCv() {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const wait = () => {
      const cv = window.cv;
      if (cv instanceof Promise) return cv.then((m) => { window.cv = m; wait(); }, reject);
      if (cv && typeof cv.then === "function") {
        return cv.then(() => {
          delete cv.then;
          resolve(cv);
        });
      }
      if (cv && cv.Mat && cv.matFromImageData) return resolve(cv);
      if (performance.now() - started > 120000) return reject(new Error("OpenCV.js did not load"));
      setTimeout(wait, 30);
    };
    wait();
  });
}

async function loadModule(path, what) {
  try {
    return await import(path);
  } catch (e) {
    throw new Error(`${what} (${path}) did not load: ${e.message}`);
  }
}

const app = { ready: null, cv: null, recognizer: null, page: null, normalize: null, result: null };
window.edgedigits = app;

app.modelReady = createRecognizer(ort, "models/model_int8.onnx");
app.cvReady = loadCv();
app.normalizeReady = loadModule("./runtime/normalize.js", "the digit normaliser");
app.pageReady = loadModule("./runtime/page.js", "the page reader");
app.ready = (async () => {
  [app.cv, app.recognizer, app.normalize, app.page] = await Promise.all(
    [app.cvReady, app.modelReady, app.normalizeReady, app.pageReady]);
  status(`Ready: ${app.recognizer.modelId}, on this device.`);
  return app;
})();
app.ready.catch((e) => status(`The reader could not start: ${e.message}`, true));

// --- reading pictures ----------------------------------------------------------------------------

// An image file (a Blob) decoded by the browser, EXIF orientation applied, on a canvas.
async function decode(blob) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob, { imageOrientation: "from-image" });
  } catch {
    throw new Error("not an image this browser can decode");
  }
  const canvas = document.createElement("canvas");
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  canvas.getContext("2d", { willReadFrequently: true }).drawImage(bitmap, 0, 0);
  bitmap.close();
  return canvas;
}

// Read the page on a canvas: {lines, digits, rejected, turn, noise, timings, measured} (page.js);
// `measured`: an earlier frame's, to reuse (the camera).
async function readCanvas(canvas, options = {}, measured = null) {
  await app.ready;
  const { cv } = app;
  const data = canvas.getContext("2d", { willReadFrequently: true }).getImageData(0, 0, canvas.width, canvas.height);
  const mat = cv.matFromImageData(data);
  try {
    return await app.page.readPage(cv, mat, app.recognizer, options, measured);
  } finally {
    mat.delete();
  }
}

// The lines of a result from its digits (after a correction).
function linesOf(result) {
  return result.lines.map((_, i) => result.digits.filter((d) => d.line === i).map((d) => d.label).join(""));
}

// Boxes, digits and confidence over the picture, as `--annotate` draws them; rejected marks faintly.
function drawResult(ctx, result, scale = 1) {
  const { width: w, height: h } = ctx.canvas;
  const thick = Math.max(1, Math.round(Math.max(w, h) / 800));
  ctx.save();
  ctx.textAlign = "center";
  if (result.page) {
    ctx.strokeStyle = COLORS.page;
    ctx.lineWidth = thick;
    ctx.beginPath();
    result.page.forEach(([x, y], i) => (i ? ctx.lineTo(x * scale, y * scale) : ctx.moveTo(x * scale, y * scale)));
    ctx.closePath();
    ctx.stroke();
  }
  ctx.globalAlpha = 0.55;
  ctx.strokeStyle = ctx.fillStyle = COLORS.faint;
  ctx.textAlign = "left";
  for (const m of result.rejected ?? []) {
    const [x, y, bw, bh] = m.box.map((v) => v * scale);
    ctx.lineWidth = thick;
    ctx.strokeRect(x, y, bw, bh);
    ctx.font = `${Math.max(9, Math.min(bh, 0.05 * Math.max(w, h)) / 2.5)}px sans-serif`;
    ctx.fillText(m.kind, x, Math.max(8, y - 2));
  }
  ctx.globalAlpha = 1;
  ctx.textAlign = "center";
  for (const d of result.digits) {
    const [x, y, bw, bh] = d.box.map((v) => v * scale);
    const color = d.low_confidence && !d.corrected ? COLORS.low : COLORS.ok;
    ctx.strokeStyle = ctx.fillStyle = color;
    ctx.lineWidth = thick;
    ctx.strokeRect(x, y, bw, bh);
    const size = Math.max(10, Math.min(bh, 2 * bw, 0.08 * Math.max(w, h)) * 0.75);
    ctx.font = `bold ${size}px sans-serif`;
    ctx.textBaseline = "bottom";
    ctx.fillText(d.label, x + bw / 2, y - 3 >= size ? y - 3 : Math.min(h - 1, y + bh + size + 3));
    ctx.font = `${0.6 * size}px sans-serif`;
    ctx.textBaseline = "top";
    ctx.fillText(d.corrected ? "ok" : String(Math.min(99, Math.floor(d.probability * 100))), x + bw / 2,
      Math.min(h - 0.6 * size, y + bh + 2));
  }
  ctx.restore();
}

// --- correction and samples ----------------------------------------------------------------------

function digitAt(result, x, y) {
  return result?.digits.find((d) => x >= d.box[0] && y >= d.box[1] && x < d.box[0] + d.box[2] && y < d.box[1] + d.box[3]);
}

function showInput28(canvas, input28) {
  const small = new ImageData(28, 28);
  for (let i = 0; i < 784; i++) {
    const v = Math.round(input28[i] * 255);
    small.data.set([v, v, v, 255], i * 4);
  }
  const tmp = document.createElement("canvas");
  tmp.width = tmp.height = 28;
  tmp.getContext("2d").putImageData(small, 0, 0);
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(tmp, 0, 0, canvas.width, canvas.height);
}

// Ask what the digit is; save it as a sample (accepted or corrected) and show the new reading.
function correct(digit, source, redraw) {
  const dialog = $("correct");
  $("correct-read").textContent = digit.label;
  showInput28($("correct-crop"), digit.input28);
  const keys = $("correct-keys");
  keys.replaceChildren(...Array.from({ length: 10 }, (_, k) => {
    const b = document.createElement("button");
    b.value = String(k);
    b.textContent = String(k);
    return b;
  }));
  dialog.onclose = async () => {
    const label = dialog.returnValue;
    if (!/^[0-9]$/.test(label)) return;
    try {
      await saveSample({ input28: digit.input28, source, box: digit.box, label, predicted: digit.predicted ?? digit.label,
        prob: digit.probability, modelId: app.recognizer.modelId });
      digit.predicted ??= digit.label;
      digit.label = label;
      digit.corrected = true;
      redraw();
      await refreshSamples();
      status(`Saved a sample: ${label}.`);
    } catch (e) {
      status(`Could not save the sample: ${e.message}`, true);
    }
  };
  dialog.returnValue = "";
  dialog.showModal();
}

// Every digit of a reading saved as a sample with its label as shown (the camera demo's key s).
async function saveAll(result, source) {
  for (const d of result.digits) {
    if (!/^[0-9]$/.test(d.label)) continue;
    await saveSample({ input28: d.input28, source, box: d.box, label: d.label, predicted: d.predicted ?? d.label,
      prob: d.probability, modelId: app.recognizer.modelId });
  }
  const n = await refreshSamples();
  status(`Saved ${result.digits.length} sample(s); ${n} in all.`);
}

async function refreshSamples() {
  const samples = await listSamples();
  $("sample-count").textContent = String(samples.length);
  const grid = $("samples-grid");
  for (const img of grid.querySelectorAll("img")) URL.revokeObjectURL(img.src);
  grid.replaceChildren(...samples.map((s) => {
    const figure = document.createElement("figure");
    const img = document.createElement("img");
    img.src = URL.createObjectURL(s.input);
    const caption = document.createElement("figcaption");
    caption.textContent = s.record.source === "corrected" ? `${s.record.predicted}\u2192${s.record.label}` : s.record.label;
    figure.append(img, caption);
    return figure;
  }));
  return samples.length;
}

async function downloadSamples() {
  const blob = await samplesZip();
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = "edgedigits-samples.zip";
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

// --- photo view ----------------------------------------------------------------------------------

const photo = { source: null, result: null };

function drawPhoto() {
  const canvas = $("photo-canvas");
  const ctx = canvas.getContext("2d");
  ctx.drawImage(photo.source, 0, 0);
  if (photo.result) {
    drawResult(ctx, photo.result);
    photo.result.lines = linesOf(photo.result);
    $("photo-lines").textContent = photo.result.lines.join("\n");
    $("copy").disabled = photo.result.lines.length === 0;
    $("save-all").disabled = photo.result.digits.length === 0;
  }
}

async function readPhoto(blob) {
  status("Reading...");
  try {
    const source = await decode(blob);
    const canvas = $("photo-canvas");
    canvas.width = source.width;
    canvas.height = source.height;
    photo.source = source;
    photo.result = null;
    $("photo-lines").textContent = "";
    drawPhoto();
    const started = performance.now();
    photo.result = await readCanvas(source);
    app.result = photo.result;
    drawPhoto();
    const n = photo.result.digits.length;
    status(`${n} digit${n === 1 ? "" : "s"} in ${photo.result.lines.length} line(s), read in ${Math.round(performance.now() - started)} ms.`);
    return photo.result;
  } catch (e) {
    status(`Could not read this picture: ${e.message}`, true);
    throw e;
  }
}

function canvasPoint(canvas, event) {
  const r = canvas.getBoundingClientRect();
  return [(event.clientX - r.left) * canvas.width / r.width, (event.clientY - r.top) * canvas.height / r.height];
}

function setupPhoto() {
  $("file").addEventListener("change", (e) => e.target.files[0] && readPhoto(e.target.files[0]).catch(() => {}));
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const file = e.dataTransfer.files[0];
    if (file) readPhoto(file).catch(() => {});
  });
  $("copy").addEventListener("click", async () => {
    const text = $("photo-lines").textContent;
    try {
      await navigator.clipboard.writeText(text);
      status("Copied.");
    } catch {
      getSelection().selectAllChildren($("photo-lines"));
      status("Selected: copy it with your device's copy command.");
    }
  });
  $("save-all").addEventListener("click", () => {
    if (photo.result) saveAll(photo.result, photo.source).catch((e) => status(`Could not save: ${e.message}`, true));
  });
  $("photo-canvas").addEventListener("click", (e) => {
    const digit = digitAt(photo.result, ...canvasPoint($("photo-canvas"), e));
    if (digit) correct(digit, photo.source, drawPhoto);
  });
}

// --- camera view ---------------------------------------------------------------------------------

const camera = { stream: null, running: false, frozen: null, frames: 0, since: 0, fps: 0, ms: [], grabMs: [],
                 measured: null, sinceMeasured: 0, thumb: null };

// As the Python camera loop (camera_demo/demo.py): a scene's page is measured (its scale and
// turn) on its first frame and every REMEASURE-th after it, and reused between; a scene ends
// where a 32x24 thumbnail changes by more than SCENE_CUT (0-255) on average.
const REMEASURE = 30, SCENE_CUT = 12.0;
const thumbCanvas = document.createElement("canvas");
thumbCanvas.width = 32;
thumbCanvas.height = 24;

function sceneCut(frame) {
  const t = thumbCanvas.getContext("2d", { willReadFrequently: true });
  t.drawImage(frame, 0, 0, 32, 24);
  const data = t.getImageData(0, 0, 32, 24).data;
  const thumb = new Int16Array(32 * 24 * 3);
  for (let i = 0, j = 0; i < data.length; i += 4) {
    thumb[j++] = data[i];
    thumb[j++] = data[i + 1];
    thumb[j++] = data[i + 2];
  }
  let change = 0;
  if (camera.thumb) for (let i = 0; i < thumb.length; i++) change += Math.abs(thumb[i] - camera.thumb[i]);
  const cut = camera.thumb !== null && change / thumb.length > SCENE_CUT;
  camera.thumb = thumb;
  return cut;
}

async function startCamera() {
  if (!navigator.mediaDevices?.getUserMedia) throw new Error("no camera access here: open the app over https or on localhost");
  camera.stream = await navigator.mediaDevices.getUserMedia({
    video: { facingMode: { ideal: "environment" }, width: { ideal: 1280 }, height: { ideal: 720 } }, audio: false });
  const video = $("video");
  video.srcObject = camera.stream;
  await video.play();
  camera.running = true;
  camera.frozen = null;
  camera.frames = 0;
  camera.since = performance.now();
  camera.ms = [];
  camera.grabMs = [];
  camera.measured = camera.thumb = null;
  camera.sinceMeasured = 0;
  $("camera-toggle").textContent = "Stop camera";
  $("camera-freeze").disabled = false;
  cameraLoop();
}

function stopCamera() {
  camera.running = false;
  camera.stream?.getTracks().forEach((t) => t.stop());
  camera.stream = null;
  $("camera-toggle").textContent = "Start camera";
  $("camera-freeze").disabled = true;
}

// The camera loop: grab the newest frame, read it, draw the frame with its reading on the canvas
// (the <video> itself is not shown: each picture on screen is the frame its boxes belong to, and
// no second picture is painted at the camera's rate), then the next frame: at once when the read
// took longer than the camera's frame interval, else when the next frame is due.
// The camera's recent per-frame times (for the FPS line and bench-web's median), bounded: a camera
// left running for hours must not grow an array a frame.
const RECENT_FRAMES = 600;
function keepLast(times, ms) {
  times.push(ms);
  if (times.length > RECENT_FRAMES) times.splice(0, times.length - RECENT_FRAMES);
}

async function cameraLoop() {
  await app.ready;
  const video = $("video");
  // two frames in turn: the one whose reading is on screen (Freeze keeps it) and the one being read
  const grabs = [0, 1].map(() => document.createElement("canvas"));
  let turn = 0;
  const overlay = $("camera-canvas");
  const ctx = overlay.getContext("2d");
  const rate = camera.stream?.getVideoTracks()[0]?.getSettings().frameRate || 30;
  let grabbedAt = -Infinity;
  while (camera.running) {
    const wait = grabbedAt + 1000 / rate - performance.now();
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, wait)));   // (lets the page paint)
    if (!camera.running || camera.frozen || !video.videoWidth) continue;
    const grab = grabs[turn ^= 1];
    if (grab.width !== video.videoWidth || grab.height !== video.videoHeight) {
      grab.width = overlay.width = video.videoWidth;    // sized when the camera's size changes
      grab.height = overlay.height = video.videoHeight;
    }
    grabbedAt = performance.now();
    grab.getContext("2d", { willReadFrequently: true }).drawImage(video, 0, 0);
    const started = performance.now();
    keepLast(camera.grabMs, started - grabbedAt);
    let result;
    if (sceneCut(grab)) camera.measured = null;
    const reuse = camera.sinceMeasured < REMEASURE ? camera.measured : null;
    try {
      result = await readCanvas(grab, {}, reuse);
    } catch (e) {
      status(`Camera: ${e.message}`, true);
      continue;
    }
    camera.sinceMeasured = reuse !== null && result.measured ? camera.sinceMeasured + 1 : 0;
    camera.measured = result.measured;
    keepLast(camera.ms, performance.now() - started);
    camera.frames += 1;
    camera.fps = camera.frames / ((performance.now() - camera.since) / 1000);
    ctx.drawImage(grab, 0, 0);
    drawResult(ctx, result);
    camera.last = { result, frame: grab };
    app.result = result;
    $("camera-lines").textContent = result.lines.join("\n");
    $("fps").textContent = `${camera.fps.toFixed(1)} FPS, ${Math.round(camera.ms.at(-1))} ms a frame`;
  }
}

function setupCamera() {
  $("camera-toggle").addEventListener("click", () => {
    if (camera.running) return stopCamera();
    startCamera().catch((e) => { stopCamera(); status(`Camera: ${e.message}`, true); });
  });
  $("camera-freeze").addEventListener("click", () => {
    if (camera.frozen) {
      camera.frozen = null;
      $("camera-freeze").textContent = "Freeze";
      return;
    }
    if (!camera.last) return;
    const copy = document.createElement("canvas");
    copy.width = camera.last.frame.width;
    copy.height = camera.last.frame.height;
    copy.getContext("2d").drawImage(camera.last.frame, 0, 0);
    camera.frozen = { source: copy, result: camera.last.result };
    $("camera-freeze").textContent = "Live";
  });
  $("camera-canvas").addEventListener("click", (e) => {
    if (!camera.frozen) return;
    const overlay = $("camera-canvas");
    const digit = digitAt(camera.frozen.result, ...canvasPoint(overlay, e));
    if (digit) {
      correct(digit, camera.frozen.source, () => {
        const ctx = overlay.getContext("2d");
        ctx.drawImage(camera.frozen.source, 0, 0);
        drawResult(ctx, camera.frozen.result);
        $("camera-lines").textContent = linesOf(camera.frozen.result).join("\n");
      });
    }
  });
}

// --- drawing pad ---------------------------------------------------------------------------------

const pad = { drawing: false, last: null, dirty: false };

function clearPad() {
  const ctx = $("pad").getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, 280, 280);
  $("probs").replaceChildren();
  $("pad-answer").textContent = "";
  $("pad-input").getContext("2d").clearRect(0, 0, 112, 112);
  pad.dirty = false;
}

// The pad's drawing, normalised as the page reader normalises a crop (normalize.js), classified.
async function classifyPad() {
  const [cv, recognizer, normalize] = await Promise.all([app.cvReady, app.modelReady, app.normalizeReady]);
  const data = $("pad").getContext("2d", { willReadFrequently: true }).getImageData(0, 0, 280, 280);
  const rgba = cv.matFromImageData(data);
  const gray = new cv.Mat();
  let input28;
  try {
    cv.cvtColor(rgba, gray, cv.COLOR_RGBA2GRAY);
    input28 = normalize.normalizeDigit(cv, gray, "auto", true);
  } finally {
    rgba.delete();
    gray.delete();
  }
  const probs = await recognizer.predict(input28);
  showInput28($("pad-input"), input28);
  const top = probs.indexOf(Math.max(...probs));
  $("probs").replaceChildren(...recognizer.labels.map((label, k) => {
    const li = document.createElement("li");
    li.className = k === top ? "top" : "";
    li.dataset.label = label;
    li.dataset.p = String(probs[k]);
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = `${(probs[k] * 100).toFixed(1)}%`;
    const [a, b] = [document.createElement("span"), document.createElement("span")];
    a.textContent = label;
    b.textContent = `${(probs[k] * 100).toFixed(1)}%`;
    const track = document.createElement("span");
    track.className = "track";
    track.append(bar);
    li.append(a, track, b);
    return li;
  }));
  $("pad-answer").textContent = recognizer.labels[top];
  return { label: recognizer.labels[top], probs: Array.from(probs), input28 };
}

function setupPad() {
  const canvas = $("pad");
  const ctx = canvas.getContext("2d");
  clearPad();
  canvas.addEventListener("pointerdown", (e) => {
    canvas.setPointerCapture?.(e.pointerId);
    pad.drawing = true;
    pad.last = canvasPoint(canvas, e);
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!pad.drawing) return;
    const p = canvasPoint(canvas, e);
    ctx.strokeStyle = "#000";
    ctx.lineWidth = 18;
    ctx.lineCap = ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(...pad.last);
    ctx.lineTo(...p);
    ctx.stroke();
    pad.last = p;
    pad.dirty = true;
  });
  const end = () => {
    if (!pad.drawing) return;
    pad.drawing = false;
    if (pad.dirty) {
      app.padResult = classifyPad().catch((e) => status(`Draw: ${e.message}`, true));
    }
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  $("pad-clear").addEventListener("click", clearPad);
}

// --- tabs, samples, service worker ---------------------------------------------------------------

function show(view) {
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("active", b.dataset.view === view);
  for (const s of document.querySelectorAll(".view")) s.classList.toggle("active", s.id === `view-${view}`);
  if (view !== "camera" && camera.running) stopCamera();
}

function setup() {
  for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => show(b.dataset.view));
  setupPhoto();
  setupCamera();
  setupPad();
  $("samples-download").addEventListener("click", () => downloadSamples().catch((e) => status(e.message, true)));
  $("samples-clear").addEventListener("click", async () => {
    if (confirm("Delete every saved sample?")) {
      await clearSamples();
      await refreshSamples();
    }
  });
  refreshSamples().catch(() => {});
  if ("serviceWorker" in navigator) {
    window.addEventListener("load", () => {
      app.serviceWorker = navigator.serviceWorker.register("sw.js").catch((e) => console.warn("service worker:", e));
    });
  }
}

setup();

// --- the handle for tests and benchmarks ---------------------------------------------------------

function fromBase64(b64) {
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

function jsonable(result, inputs) {
  const out = { ...result, digits: result.digits.map((d) => {
    const { input28, ...rest } = d;
    return inputs ? { ...rest, input28: Array.from(input28) } : rest;
  }) };
  return out;
}

Object.assign(app, {
  decode, readCanvas, readPhoto, drawResult, classifyPad, camera, refreshSamples,
  // probabilities for float32 crops given as base64 bytes (N*784*4): an Array of N*C numbers
  async predictBase64(b64) {
    await app.modelReady;
    const bytes = fromBase64(b64);
    return Array.from(await (await app.modelReady).predict(new Float32Array(bytes.buffer)));
  },
  // read an encoded image given as base64 bytes; digits carry input28 arrays when `inputs`
  async readBase64(b64, { type = "image/jpeg", inputs = false, options = {} } = {}) {
    const canvas = await decode(new Blob([fromBase64(b64)], { type }));
    return jsonable(await readCanvas(canvas, options), inputs);
  },
  // milliseconds of each of `repeat` reads of one decoded image (decoding not timed)
  async benchBase64(b64, repeat = 10, { type = "image/jpeg" } = {}) {
    const canvas = await decode(new Blob([fromBase64(b64)], { type }));
    await readCanvas(canvas);                                    // warm-up
    const { cv } = app;
    const data = canvas.getContext("2d", { willReadFrequently: true }).getImageData(0, 0, canvas.width, canvas.height);
    const times = [];
    for (let i = 0; i < repeat; i++) {
      const mat = cv.matFromImageData(data);
      const t = performance.now();
      await app.page.readPage(cv, mat, app.recognizer);
      times.push(performance.now() - t);
      mat.delete();
    }
    return { width: canvas.width, height: canvas.height, times };
  },
});
