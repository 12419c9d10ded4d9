// The digit classifier in the browser: one .onnx model behind one `predict(crops) -> probs` call,
// as runtime/recognizer.py's Recognizer.predict.
//
// The model file says what it needs: the exporter writes one JSON object into the ONNX
// metadata_props (key "edgedigits"): labels, input layout, output kind ("logits" -> softmax here)
// and the "none" threshold. onnxruntime-web does not expose metadata_props, so they are read from
// the protobuf bytes (as Python's onnx_metadata_props does) and the session is made from the same
// bytes: one download.

const LABELS = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

function varint(buf, i) {
  let value = 0;
  let scale = 1;
  for (;;) {
    if (i >= buf.length) throw new RangeError("truncated varint");
    const b = buf[i++];
    value += (b & 0x7f) * scale;       // multiplication, not <<: lengths may pass 2^31
    scale *= 128;
    if (b < 0x80) return [value, i];
  }
}

// ModelProto.metadata_props (field 14, StringStringEntryProto {1: key, 2: value}) read straight
// from the wire format; only top-level fields are walked (weights are skipped by their length).
export function onnxMetadataProps(bytes) {
  const props = {};
  const text = new TextDecoder("utf-8");
  let i = 0;
  try {
    while (i < bytes.length) {
      let key, size;
      [key, i] = varint(bytes, i);
      const field = Math.floor(key / 8);
      const wire = key & 7;
      if (wire === 0) [, i] = varint(bytes, i);
      else if (wire === 1) i += 8;
      else if (wire === 5) i += 4;
      else if (wire === 2) {
        [size, i] = varint(bytes, i);
        if (field === 14) {
          const entry = bytes.subarray(i, i + size);
          const kv = {};
          let j = 0;
          while (j < entry.length) {
            let k, n;
            [k, j] = varint(entry, j);
            [n, j] = varint(entry, j);
            kv[Math.floor(k / 8)] = text.decode(entry.subarray(j, j + n));
            j += n;
          }
          props[kv[1] ?? ""] = kv[2] ?? "";
        }
        i += size;
      } else break;
    }
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
  }
  return props;
}

// Softmax of each row of `y` [n, c] in float64, stored as float32 (as numpy does it in Python).
function softmaxRows(y, n, c) {
  const out = new Float32Array(n * c);
  for (let r = 0; r < n; r++) {
    let max = -Infinity;
    for (let k = 0; k < c; k++) max = Math.max(max, y[r * c + k]);
    let sum = 0;
    const e = new Float64Array(c);
    for (let k = 0; k < c; k++) { e[k] = Math.exp(y[r * c + k] - max); sum += e[k]; }
    for (let k = 0; k < c; k++) out[r * c + k] = e[k] / sum;
  }
  return out;
}

// The model at `modelUrl` (or its bytes) in an onnxruntime-web session on the wasm backend.
// Returns {labels, none_threshold, metadata, modelId, inputName, predict(crops: Float32Array N*784)}.
export async function createRecognizer(ort, modelUrl) {
  let bytes = modelUrl;
  if (!(bytes instanceof Uint8Array)) {
    const response = await fetch(modelUrl);
    if (!response.ok) throw new Error(`cannot load the model ${modelUrl}: HTTP ${response.status}`);
    bytes = new Uint8Array(await response.arrayBuffer());
  }
  let metadata = {};
  try {
    metadata = JSON.parse(onnxMetadataProps(bytes).edgedigits ?? "{}") ?? {};
  } catch {
    metadata = {};
  }
  const session = await ort.InferenceSession.create(bytes, {
    executionProviders: ["wasm"], graphOptimizationLevel: "all",
    intraOpNumThreads: 1, interOpNumThreads: 1,
  });
  if (session.inputNames.length !== 1 || session.outputNames.length !== 1) {
    throw new Error(`expected 1 input and 1 output, found ${session.inputNames.length} and ${session.outputNames.length}`);
  }
  const inputName = session.inputNames[0];
  const outputName = session.outputNames[0];
  const layout = metadata.input?.layout ?? "NCHW";
  const dims = { NCHW: [1, 28, 28], NHWC: [28, 28, 1], NHW: [28, 28], flat: [784] }[layout];
  if (!dims) throw new Error(`unsupported input layout ${layout}`);
  const output = metadata.output ?? {};
  const kind = output.kind ?? "auto";
  let labels = Array.isArray(metadata.labels) ? metadata.labels.map(String) : null;

  async function run(crops, n) {
    const feeds = { [inputName]: new ort.Tensor("float32", crops, [n, ...dims]) };
    const result = await session.run(feeds);
    const y = result[outputName];
    const data = Float32Array.from(y.data);
    y.dispose?.();
    return data;
  }

  // Class probabilities, row-major [N, labels.length], for N float32 28x28 crops in [0, 1]
  // (white ink on black), as Recognizer.predict in Python.
  async function predict(crops) {
    if (!(crops instanceof Float32Array)) crops = Float32Array.from(crops);
    if (crops.length % 784 !== 0) throw new Error(`predict takes N*784 floats, got ${crops.length}`);
    const n = crops.length / 784;
    const c = labels.length;
    if (n === 0) return new Float32Array(0);
    let low = Infinity, high = -Infinity;
    for (const v of crops) {
      if (!Number.isFinite(v)) throw new Error("predict takes finite pixel values; the crops hold NaN or inf");
      if (v < low) low = v;
      if (v > high) high = v;
    }
    if (low < -0.01 || high > 1.01) throw new Error(`predict takes crops in [0, 1], got values from ${low} to ${high}`);
    const y = await run(crops, n);
    if (y.length !== n * c) throw new Error(`the model gives ${y.length / n} scores per crop, expected ${c}`);
    let isProbs = kind === "probabilities";
    if (kind === "auto") {
      isProbs = y.every((v) => v >= 0);
      for (let r = 0; isProbs && r < n; r++) {
        let s = 0;
        for (let k = 0; k < c; k++) s += y[r * c + k];
        isProbs = Math.abs(s - 1) <= 1e-2;
      }
    }
    return isProbs ? y : softmaxRows(y, n, c);
  }

  // A model without labels: 11 outputs are the digits and "none" (the documented contract).
  if (!labels) {
    const probe = await run(new Float32Array(784), 1);
    labels = probe.length === 11 ? [...LABELS, "none"] : LABELS.slice(0, probe.length);
  }
  const noneThreshold = typeof output.none_threshold === "number" ? output.none_threshold : 0.5;
  // the id Python's Recognizer gives the same file (saved with each sample): name/format@sha256[:12]
  let digest = "";
  if (globalThis.crypto?.subtle) {     // only in a secure context (https, localhost)
    const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    digest = Array.from(hash.slice(0, 6), (b) => b.toString(16).padStart(2, "0")).join("");
  }
  const modelId = `${metadata.name ?? "model"}/${metadata.format ?? "onnx"}@${digest || "unhashed"}`;
  return { labels, none_threshold: noneThreshold, metadata, modelId, inputName, predict, session };
}
