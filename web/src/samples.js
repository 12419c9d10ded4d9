// Saved samples in the browser (IndexedDB), and their download as the file that
// `edgedigits finetune --samples FILE.zip` reads as it is: a zip (stored, no compression) holding
// exactly the samples folder of runtime/samples.py: index.jsonl (one JSON object per line) and,
// per sample, <id>-28.png (the 28x28 model input, grey, white ink on black) and <id>-crop.png
// (the digit as cut from the picture, original resolution).

const DB = "edgedigits";
const STORE = "samples";
const FORMAT_VERSION = 1;   // runtime/samples.py FORMAT_VERSION

function openDb() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: "id" });
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function withStore(mode, fn) {
  const db = await openDb();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const out = fn(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(out && "result" in out ? out.result : undefined);
      tx.onerror = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

// np.rint: round half to even
function rint(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// The float32 [784] model input in [0, 1] as the uint8 grey image it came from (samples.to_uint8).
export function toUint8(input28) {
  return Uint8ClampedArray.from(input28, (v) => Math.min(255, Math.max(0, rint(v * 255))));
}

function canvasPng(canvas) {
  return new Promise((resolve, reject) => canvas.toBlob((b) => (b ? resolve(b) : reject(new Error("PNG encoding failed"))), "image/png"));
}

export async function inputPng(input28) {
  const gray = toUint8(input28);
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = 28;
  const image = new ImageData(28, 28);
  for (let i = 0; i < 784; i++) {
    image.data.set([gray[i], gray[i], gray[i], 255], i * 4);
  }
  canvas.getContext("2d").putImageData(image, 0, 0);
  return canvasPng(canvas);
}

// The box [x, y, w, h] of `source` (a canvas or image) at its own resolution, as a PNG.
export async function cropPng(source, box) {
  const [x, y, w, h] = box;
  const canvas = document.createElement("canvas");
  canvas.width = Math.max(1, w);
  canvas.height = Math.max(1, h);
  canvas.getContext("2d").drawImage(source, x, y, w, h, 0, 0, w, h);
  return canvasPng(canvas);
}

function sampleId(now) {
  const p = (n, k = 2) => String(n).padStart(k, "0");
  const stamp = `${now.getUTCFullYear()}${p(now.getUTCMonth() + 1)}${p(now.getUTCDate())}T` +
    `${p(now.getUTCHours())}${p(now.getUTCMinutes())}${p(now.getUTCSeconds())}${p(now.getUTCMilliseconds(), 3)}000Z`;
  const hex = Array.from(crypto.getRandomValues(new Uint8Array(3)), (b) => b.toString(16).padStart(2, "0")).join("");
  return `${stamp}-${hex}`;
}

// Save one sample: the record written is the one SampleStore.save writes in Python.
export async function saveSample({ input28, source, box, label, predicted, prob, modelId, frame = null }) {
  if (!/^[0-9]$/.test(label)) throw new Error(`label ${label} is not a digit 0-9`);
  const now = new Date();
  const id = sampleId(now);
  const record = {
    id, label, source: predicted === label ? "accepted" : "corrected", predicted,
    prob: prob == null ? null : Math.round(prob * 1e4) / 1e4,
    input: `${id}-28.png`, crop: `${id}-crop.png`,
    time: now.toISOString().replace("Z", "000Z"), model_id: modelId,
    box: box ? box.map((v) => Math.round(v)) : null, frame, format: FORMAT_VERSION,
  };
  const entry = { id, record, input: await inputPng(input28), crop: await cropPng(source, box) };
  await withStore("readwrite", (store) => store.put(entry));
  return record;
}

export function listSamples() {
  return withStore("readonly", (store) => store.getAll());
}

export function clearSamples() {
  return withStore("readwrite", (store) => store.clear());
}

// --- zip (stored entries, CRC-32) ----------------------------------------------------------------

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes) {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// A zip archive of [name, Uint8Array] entries, no compression (PNGs are compressed already).
export function zip(entries) {
  const enc = new TextEncoder();
  const parts = [];
  const central = [];
  let offset = 0;
  for (const [name, data] of entries) {
    const nameBytes = enc.encode(name);
    const crc = crc32(data);
    const local = new DataView(new ArrayBuffer(30));
    local.setUint32(0, 0x04034b50, true);
    local.setUint16(4, 20, true);          // version needed
    local.setUint16(6, 0x0800, true);      // UTF-8 names
    local.setUint16(8, 0, true);           // stored
    local.setUint32(14, crc, true);
    local.setUint32(18, data.length, true);
    local.setUint32(22, data.length, true);
    local.setUint16(26, nameBytes.length, true);
    const head = new DataView(new ArrayBuffer(46));
    head.setUint32(0, 0x02014b50, true);
    head.setUint16(4, 20, true);
    head.setUint16(6, 20, true);
    head.setUint16(8, 0x0800, true);
    head.setUint32(16, crc, true);
    head.setUint32(20, data.length, true);
    head.setUint32(24, data.length, true);
    head.setUint16(28, nameBytes.length, true);
    head.setUint32(42, offset, true);
    parts.push(new Uint8Array(local.buffer), nameBytes, data);
    central.push(new Uint8Array(head.buffer), nameBytes);
    offset += 30 + nameBytes.length + data.length;
  }
  const size = central.reduce((s, p) => s + p.length, 0);
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true);
  end.setUint16(8, entries.length, true);
  end.setUint16(10, entries.length, true);
  end.setUint32(12, size, true);
  end.setUint32(16, offset, true);
  return new Blob([...parts, ...central, new Uint8Array(end.buffer)], { type: "application/zip" });
}

// Every saved sample as the samples folder, zipped (oldest first, as the index is appended).
export async function samplesZip() {
  const samples = (await listSamples()).sort((a, b) => (a.id < b.id ? -1 : 1));
  const lines = samples.map((s) => JSON.stringify(s.record) + "\n").join("");
  const entries = [["index.jsonl", new TextEncoder().encode(lines)]];
  for (const s of samples) {
    entries.push([s.record.input, new Uint8Array(await s.input.arrayBuffer())]);
    entries.push([s.record.crop, new Uint8Array(await s.crop.arrayBuffer())]);
  }
  return zip(entries);
}
