"""Recognizer: one digit classifier (.tflite or .onnx) behind one `predict(crops) -> probs` call.

The model file says what it needs. Every file the exporter writes carries one JSON object
(`metadata`): its labels, input layout/dtype and whether it outputs logits. ONNX keeps it in
`metadata_props["edgedigits"]`; a .tflite has a zip archive appended to its flatbuffer
(interpreters ignore trailing bytes) holding `metadata.json` and `labels.txt`. A file without
metadata still works: the layout is read from the input tensor's shape (NCHW [N,1,28,28], NHWC
[N,28,28,1], [N,28,28] or [N,784]), integer input/output are (de)quantized with the scale and zero
point stored in the model, and outputs that are not already probabilities go through a softmax;
11 outputs are the digits and "none" (not a digit).

Backends, in order of preference (all optional; only the one you use must be installed):
  .tflite: ai-edge-litert, else tflite_runtime, else tensorflow.lite (imported only as the last resort)
  .onnx:   onnxruntime, else OpenCV's dnn module
"""

import hashlib
import importlib.util
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

from edgedigits.common import quiet_stderr, read_checksum
from edgedigits.errors import EdgeDigitsError

LABELS = [str(d) for d in range(10)]
TFLITE_BACKENDS = ("litert", "tflite_runtime", "tensorflow")
ONNX_BACKENDS = ("onnxruntime", "opencv")
BACKENDS = ("auto",) + TFLITE_BACKENDS + ONNX_BACKENDS
_MODULE = {"litert": "ai_edge_litert", "tflite_runtime": "tflite_runtime", "tensorflow": "tensorflow",
           "onnxruntime": "onnxruntime", "opencv": "cv2"}


def installed(backend: str) -> bool:
    """Whether the package behind `backend` can be imported (checked without importing it)."""
    return importlib.util.find_spec(_MODULE[backend]) is not None


def default_model_path() -> Path:
    """The shipped int8 .onnx when onnxruntime is installed, else the shipped int8 .tflite when a
    light TFLite interpreter is, else the shipped .onnx. The int8 ONNX in onnxruntime computes the
    same logits on x86 and arm64 (to 1e-6), LiteRT's int8 kernels do not (up to 0.15 apart, enough
    to flip a mark on a page: docs/raspberry-pi.md), and the web app runs the same file."""
    from edgedigits.models import shipped

    folder = shipped()
    int8_onnx, tflite, onnx = folder / "model_int8.onnx", folder / "model_int8.tflite", folder / "model.onnx"
    if int8_onnx.exists() and installed("onnxruntime"):
        return int8_onnx
    light_tflite = installed("litert") or installed("tflite_runtime")
    if tflite.exists() and (light_tflite or not onnx.exists()):
        return tflite
    if onnx.exists():
        return onnx
    raise EdgeDigitsError(f"no exported model in {folder}: run `edgedigits export` first, or pass --model")


# --- metadata ------------------------------------------------------------------------------------

def tflite_metadata(data: bytes) -> dict:
    """The metadata a .tflite carries in the zip appended to it ({} if it has none)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = z.namelist()
            meta = json.loads(z.read("metadata.json")) if "metadata.json" in names else {}
            if "labels.txt" in names and isinstance(meta, dict) and "labels" not in meta:
                meta["labels"] = z.read("labels.txt").decode().split()
            return meta
    except (zipfile.BadZipFile, ValueError, KeyError, RecursionError, EOFError, OSError,
            NotImplementedError, RuntimeError):     # a broken archive: as if there were none
        return {}


def _varint(buf: bytes, i: int):
    value = shift = 0
    while True:
        b = buf[i]
        value |= (b & 0x7F) << shift
        i, shift = i + 1, shift + 7
        if b < 0x80:
            return value, i


def onnx_metadata_props(data: bytes) -> dict:
    """ModelProto.metadata_props (field 14) read straight from the protobuf wire format.

    onnxruntime gives the same through `get_modelmeta()`; this is for the OpenCV backend, so that
    a device with neither `onnx` nor onnxruntime still reads the labels. Only top-level fields are
    walked (a few hundred bytes per model: weights are skipped by their length).
    """
    props, i = {}, 0
    try:
        while i < len(data):
            key, i = _varint(data, i)
            field, wire = key >> 3, key & 7
            if wire == 0:
                _, i = _varint(data, i)
            elif wire == 1:
                i += 8
            elif wire == 5:
                i += 4
            elif wire == 2:
                size, i = _varint(data, i)
                if field == 14:  # StringStringEntryProto {1: key, 2: value}
                    entry, j, kv = data[i:i + size], 0, {}
                    while j < len(entry):
                        k, j = _varint(entry, j)
                        n, j = _varint(entry, j)
                        kv[k >> 3] = entry[j:j + n].decode("utf-8", "replace")
                        j += n
                    props[kv.get(1, "")] = kv.get(2, "")
                i += size
            else:
                return props
    except IndexError:
        pass
    return props


def _json_or_empty(text: str):
    """The parsed JSON ({} for none or unparsable text; any other value is left for
    `validate_metadata` to refuse)."""
    try:
        return json.loads(text)
    except (TypeError, ValueError, RecursionError):
        return {}


# --- backends: each exposes input shape/dtype/quantization and run(x) -> raw output --------------

class _TFLite:
    def __init__(self, data: bytes, threads: int, backend: str):
        Interpreter = None
        for name in (TFLITE_BACKENDS if backend == "auto" else (backend,)):
            if not installed(name):
                continue
            if name == "litert":
                from ai_edge_litert.interpreter import Interpreter
            elif name == "tflite_runtime":
                from tflite_runtime.interpreter import Interpreter
            else:  # the heavy last resort, loaded only here, only when nothing lighter exists
                Interpreter = importlib.import_module("tensorflow").lite.Interpreter
            self.name = name
            break
        if Interpreter is None and backend != "auto":
            raise EdgeDigitsError(f"backend {backend!r} is not installed (pip install {_MODULE[backend]})")
        if Interpreter is None:
            raise EdgeDigitsError("no TFLite interpreter installed: pip install ai-edge-litert "
                                  "(or use an .onnx model with onnxruntime)")
        with quiet_stderr():
            self.interpreter = Interpreter(model_content=data, num_threads=threads)
            self.interpreter.allocate_tensors()
        inp, out = self.interpreter.get_input_details(), self.interpreter.get_output_details()
        if len(inp) != 1 or len(out) != 1:
            raise ValueError(f"expected 1 input and 1 output, found {len(inp)} and {len(out)}")
        self.inp, self.out = inp[0], out[0]
        self.shape = [int(d) for d in self.inp["shape"]]
        self.dtype = np.dtype(self.inp["dtype"])
        self.in_quant = self.inp["quantization"]
        self.out_quant = self.out["quantization"]
        self.batch = self.shape[0]
        self.resizable = True

    def _resize(self, n: int) -> None:
        self.interpreter.resize_tensor_input(self.inp["index"], [n, *self.shape[1:]], strict=False)
        self.interpreter.allocate_tensors()
        self.batch = n

    def run(self, x: np.ndarray) -> np.ndarray:
        """Run a batch: the input is resized to the batch once (and kept for the next call of that
        size); a graph whose batch is baked in (a reshape to [1, -1]) is run one crop at a time."""
        it, n = self.interpreter, len(x)
        if n != self.batch and self.resizable:
            try:
                self._resize(n)
            except (RuntimeError, ValueError):
                self.resizable = False
                self._resize(self.shape[0])
        if n != self.batch:
            return np.concatenate([self.run(x[i:i + self.batch]) for i in range(0, n, self.batch)])
        it.set_tensor(self.inp["index"], x)
        it.invoke()
        y = it.get_tensor(self.out["index"])
        if y.shape[0] != n:  # the batch did not flow through the graph
            self.resizable = False
            self._resize(self.shape[0])
            return self.run(x)
        return y


class _OnnxRuntime:
    name = "onnxruntime"

    def __init__(self, data: bytes, threads: int):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ValueError(f"expected 1 input and 1 output, found {len(inputs)} and {len(outputs)}")
        self.input_name = inputs[0].name
        self.shape = [d if isinstance(d, int) else -1 for d in inputs[0].shape]
        types = {"tensor(float)": np.float32, "tensor(uint8)": np.uint8, "tensor(int8)": np.int8}
        if inputs[0].type not in types:
            raise ValueError(f"unsupported input type {inputs[0].type}")
        self.dtype = np.dtype(types[inputs[0].type])
        # ONNX has no I/O quantization parameters: integer pixels are taken as 0..255
        self.in_quant = (1 / 255, -128 if self.dtype == np.int8 else 0) if self.dtype != np.float32 else (0.0, 0)
        self.out_quant = (0.0, 0)
        self.batch = self.shape[0]
        self.props = self.session.get_modelmeta().custom_metadata_map

    def run(self, x: np.ndarray) -> np.ndarray:
        if self.batch > 0 and len(x) != self.batch:
            return np.concatenate([self.run(x[i:i + self.batch]) for i in range(0, len(x), self.batch)])
        return self.session.run(None, {self.input_name: x})[0]


class _OpenCV:
    name = "opencv"

    def __init__(self, path: Path, threads: int):
        import cv2

        from .images import quiet_opencv

        self.cv2, self.threads = cv2, threads
        with quiet_opencv():
            self.net = cv2.dnn.readNetFromONNX(str(path))
        self.shape, self.dtype = [-1, 1, 28, 28], np.dtype(np.float32)
        self.in_quant, self.out_quant, self.batch = (0.0, 0), (0.0, 0), -1

    def run(self, x: np.ndarray) -> np.ndarray:
        """One forward pass on `threads` threads; OpenCV's thread count is process-wide, so the
        rest of the process (page reading) gets its own setting back afterwards."""
        before = self.cv2.getNumThreads()
        self.cv2.setNumThreads(self.threads)
        try:
            self.net.setInput(np.ascontiguousarray(x))
            return self.net.forward()
        finally:
            self.cv2.setNumThreads(before)


# --- checks before and after a model loads -------------------------------------------------------

def probe_digits() -> np.ndarray:
    """Two test inputs: a blank crop and a drawn 1 (a bar in the middle), float32 [2,28,28]."""
    x = np.zeros((2, 28, 28), np.float32)
    x[1, 4:24, 12:16] = 1.0
    return x


def verify_checksum(path: Path, digest: str) -> bool:
    """Whether the file's sha256 matches the one recorded beside it (`model.onnx.sha256`, written
    by the exporter); False when none is recorded; EdgeDigitsError when it does not match (a
    corrupt or altered file never reaches a native reader)."""
    recorded = read_checksum(path)
    if recorded is None:
        return False
    if recorded != digest:
        raise EdgeDigitsError(f"{path}: does not match the sha256 recorded in {path.name}.sha256 "
                              "(a corrupt or altered file); export it again")
    return True


def probe_in_child(path: Path, backend: str, reader: str, timeout: float = 60.0) -> None:
    """Load and run a model in a child process first: a file without a recorded checksum may crash
    a native reader (OpenCV's ONNX reader: SIGSEGV; LiteRT on a damaged flatbuffer: SIGABRT), which
    must end in a message, not a dead process. A load that fails cleanly there fails here again,
    with its own message."""
    code = ("import sys\nfrom edgedigits.errors import EdgeDigitsError\n"
            "from edgedigits.runtime.recognizer import Recognizer\n"
            "try: Recognizer(sys.argv[1], backend=sys.argv[2], probe=False)\nexcept EdgeDigitsError: pass")
    try:
        child = subprocess.run([sys.executable, "-c", code, str(path), backend], capture_output=True,
                               timeout=timeout)
    except subprocess.TimeoutExpired:
        raise EdgeDigitsError(f"{path}: {reader} did not load it in {timeout:.0f} s") from None
    if child.returncode < 0 or child.returncode > 1:
        how = f"signal {-child.returncode}" if child.returncode < 0 else f"exit {child.returncode}"
        raise EdgeDigitsError(f"{path}: {reader} crashes on this file ({how}); a corrupt model? "
                              "(export it again)")


# what the metadata of a model file may hold: key -> (type, check, what it must be)
def _labels_ok(v):
    return 1 <= len(v) <= 1000 and all(isinstance(s, str) and 0 < len(s) <= 64 for s in v)


def _output_ok(v):
    kind = v.get("kind", "auto")
    t = v.get("none_threshold", 0.5)
    return kind in ("logits", "probabilities", "auto") and isinstance(t, (int, float)) \
        and not isinstance(t, bool) and 0.0 <= t <= 1.0


METADATA_SCHEMA = {
    "labels": (list, _labels_ok, "a list of 1 to 1000 short strings"),
    "output": (dict, _output_ok, 'an object with kind "logits" or "probabilities" and a '
                                 "none_threshold between 0 and 1"),
    "name": (str, lambda v: 0 < len(v) <= 200, "a short string"),
    "format": (str, lambda v: 0 < len(v) <= 64, "a short string"),
}


def validate_metadata(meta, path) -> dict:
    """The model's metadata, checked against METADATA_SCHEMA (a field a reader uses that has the
    wrong type or value is an EdgeDigitsError naming it; other fields are kept as they are)."""
    if not isinstance(meta, dict):
        raise EdgeDigitsError(f"{path}: its metadata is not a JSON object")
    for key, (kind, ok, what) in METADATA_SCHEMA.items():
        if key in meta and not (isinstance(meta[key], kind) and ok(meta[key])):
            raise EdgeDigitsError(f"{path}: metadata field {key!r} must be {what}, got {meta[key]!r:.80}")
    return meta


# --- the recognizer -----------------------------------------------------------------------------

class Recognizer:
    """Classify MNIST-style crops with an exported model, on any installed interpreter.

    >>> rec = Recognizer()                       # the shipped model, 1 thread
    >>> probs = rec.predict(crops)               # float32 [N,28,28] in [0,1] -> [N,10]
    >>> rec.labels[probs[0].argmax()]
    """

    def __init__(self, model_path=None, threads: int = 1, backend: str = "auto", probe: bool = True):
        """`probe`: load a file that has no matching .sha256 beside it in a child process first,
        where the interpreter may crash (OpenCV's ONNX reader, LiteRT)."""
        if backend not in BACKENDS:
            raise EdgeDigitsError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
        if int(threads) < 1:
            raise EdgeDigitsError(f"threads must be >= 1, got {threads}")
        self.path = Path(model_path) if model_path is not None else default_model_path()
        self.threads = int(threads)
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            raise EdgeDigitsError(f"{self.path}: no such model file") from None
        except IsADirectoryError:
            raise EdgeDigitsError(f"{self.path}: is a folder; pass a .tflite or .onnx file") from None
        self.sha256 = hashlib.sha256(data).hexdigest()
        suffix = self.path.suffix.lower()
        if suffix not in (".tflite", ".onnx"):
            raise EdgeDigitsError(f"{self.path}: not a model file (expected .tflite or .onnx)")
        self.verified = verify_checksum(self.path, self.sha256)
        try:
            if suffix == ".tflite":
                if backend in ONNX_BACKENDS:
                    raise EdgeDigitsError(f"backend {backend!r} cannot run a .tflite file")
                if probe and not self.verified:      # LiteRT may abort on a damaged flatbuffer
                    probe_in_child(self.path, backend, "the TFLite interpreter")
                self._model = _TFLite(data, self.threads, backend)
                meta = tflite_metadata(data)
            else:
                if backend in TFLITE_BACKENDS:
                    raise EdgeDigitsError(f"backend {backend!r} cannot run an .onnx file")
                use_ort = backend == "onnxruntime" or (backend == "auto" and installed("onnxruntime"))
                if use_ort:
                    self._model = _OnnxRuntime(data, self.threads)
                    meta = _json_or_empty(self._model.props.get("edgedigits"))
                else:
                    if probe and not self.verified:      # OpenCV's reader may crash on a broken file
                        probe_in_child(self.path, backend, "OpenCV's ONNX reader")
                    self._model = _OpenCV(self.path, self.threads)
                    meta = _json_or_empty(onnx_metadata_props(data).get("edgedigits"))
        except EdgeDigitsError:
            raise
        except ModuleNotFoundError:
            raise
        except Exception as e:  # interpreters raise RuntimeError, ValueError, their own types...
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            hint = "; OpenCV's dnn module cannot run it, install onnxruntime" if "OpenCV" in first else ""
            raise EdgeDigitsError(f"{self.path}: cannot load this model ({first}){hint}") from None
        self.backend = self._model.name
        self.metadata = meta = validate_metadata(meta, self.path)
        self.labels = [str(s) for s in meta.get("labels", LABELS)]
        # an 11-class model calls a mark "none" (not a digit) above this probability
        self.none_threshold = float(meta.get("output", {}).get("none_threshold", 0.5))
        self.layout = self._layout(self._model.shape)
        self.logits = meta.get("output", {}).get("kind", "auto")
        self._check()
        fmt = meta.get("format") or suffix.lstrip(".")
        self.model_id = f"{meta.get('name', self.path.stem)}/{fmt}@{self.sha256[:12]}"

    def __repr__(self):
        return f"Recognizer({self.model_id}, backend={self.backend}, threads={self.threads})"

    def _layout(self, shape) -> str:
        dims = list(shape[1:])
        if dims == [1, 28, 28]:
            return "NCHW"
        if dims == [28, 28, 1]:
            return "NHWC"
        if dims == [28, 28]:
            return "NHW"
        if dims == [784]:
            return "flat"
        raise EdgeDigitsError(f"{self.path}: input shape {list(shape)} is not a 28x28 digit")

    def _check(self):
        """Run a blank and a drawn digit, one at a time: a model that does not give len(labels)
        finite scores for each is refused now (NaN weights load, then fail on every image)."""
        try:
            out = np.concatenate([self._run(crop[None]) for crop in probe_digits()])
        except Exception as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise EdgeDigitsError(f"{self.path}: the model fails on a 28x28 digit ({first})") from None
        if "labels" not in self.metadata and out.shape == (2, 11):   # the documented 11-class contract
            self.labels = LABELS + ["none"]
        if out.shape != (2, len(self.labels)):
            raise EdgeDigitsError(f"{self.path}: outputs shape {[1, *out.shape[1:]]}, expected "
                                  f"[1, {len(self.labels)}] (one score per label)")
        if not np.isfinite(out).all():
            raise EdgeDigitsError(f"{self.path}: the model gives NaN or infinite scores on a test digit "
                                  "(broken weights)")

    def _run(self, crops: np.ndarray) -> np.ndarray:
        m = self._model
        x = {"NCHW": crops[:, None], "NHWC": crops[..., None], "NHW": crops,
             "flat": crops.reshape(len(crops), -1)}[self.layout]
        if m.dtype != np.float32:  # integer input: quantize with the model's own scale/zero point
            scale, zero = m.in_quant
            info = np.iinfo(m.dtype)
            x = np.clip(np.round(x / scale) + zero, info.min, info.max)
        y = m.run(np.ascontiguousarray(x, dtype=m.dtype))
        y = y.reshape(len(crops), -1)
        if y.dtype != np.float32:
            scale, zero = m.out_quant
            y = (y.astype(np.float32) - zero) * (scale or 1.0)
        return y.astype(np.float32, copy=False)

    def predict(self, crops) -> np.ndarray:
        """Class probabilities [N, len(labels)] for float32 crops [N,28,28] (or one [28,28])."""
        with np.errstate(over="ignore", invalid="ignore"):     # out of float32's range: inf, refused below
            crops = np.asarray(crops, dtype=np.float32)
        if crops.ndim == 2:
            crops = crops[None]
        if crops.ndim == 4 and 1 in (crops.shape[1], crops.shape[3]):
            crops = crops.reshape(len(crops), 28, 28) if crops.size == len(crops) * 784 else crops
        if crops.ndim != 3 or crops.shape[1:] != (28, 28):
            raise EdgeDigitsError(f"predict takes float32 crops [N,28,28], got shape {list(crops.shape)}")
        if len(crops) == 0:
            return np.zeros((0, len(self.labels)), np.float32)
        if not np.isfinite(crops).all():
            raise EdgeDigitsError("predict takes finite pixel values; the crops hold NaN or inf")
        low, high = float(crops.min()), float(crops.max())
        if low < -0.01 or high > 1.01:
            hint = "; divide 0-255 pixels by 255" if high > 1.01 and high <= 255 and low >= 0 else ""
            raise EdgeDigitsError(f"predict takes crops in [0, 1] (white ink on black), got values from "
                                  f"{low:g} to {high:g}{hint}")
        y = self._run(crops)
        is_probs = self.logits == "probabilities" or (
            self.logits == "auto" and y.min() >= 0 and np.allclose(y.sum(1), 1, atol=1e-2))
        if is_probs:
            return y
        e = np.exp(y - y.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)
