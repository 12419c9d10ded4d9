"""THE formats table: one row per exported file. It drives the exporter, the benchmark, the parity
tests and the README's formats section, so a format is added here and nowhere else.

Light on purpose (no torch, no onnx): `edgedigits export --format tflit` must answer "did you mean"
instantly, and the runtime side may read the table too.
"""

import difflib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from edgedigits.errors import EdgeDigitsError


@dataclass(frozen=True)
class Runtime:
    """Something that runs an exported file: its import name and how to install it."""

    name: str
    title: str
    module: str
    install: str


RUNTIMES = {r.name: r for r in (
    Runtime("pytorch", "PyTorch eager", "torch", "pip install 'edgedigits[train]'"),
    Runtime("onnxruntime", "ONNX Runtime", "onnxruntime", "pip install onnxruntime"),
    Runtime("opencv", "OpenCV dnn", "cv2", "pip install 'opencv-python-headless<5'"),
    Runtime("litert", "LiteRT interpreter", "ai_edge_litert", "pip install ai-edge-litert"),
)}


@dataclass(frozen=True)
class Format:
    """One exported file. `needs` are the Python modules the exporter imports to make it;
    `runtimes` are the engines that load it (the first one measures its accuracy)."""

    name: str
    title: str
    file: str
    dtype: str                 # weights: float32 | int8
    layout: str                # NCHW | NHWC
    shape: tuple               # input shape, -1 = any batch size
    made_by: str
    needs: tuple
    runtimes: tuple
    aliases: tuple = ()
    int8: str | None = None    # name of the int8 variant of a float32 format
    converter: str = ""        # key of export/exporter.py's CONVERTERS that writes it ("": the reference)

    @property
    def suffix(self) -> str:
        return "." + self.file.rsplit(".", 1)[1]

    @property
    def reference(self) -> bool:
        return self.name == "pytorch"

    @property
    def from_float_onnx(self) -> bool:
        """Whether its converter starts from the float ONNX export (made once per run)."""
        return self.converter in ("onnx", "onnx_int8", "onnx2tf")


ONNX_NEEDS = ("torch", "onnx", "onnxscript")
TFLITE_NEEDS = ("torch", "litert_torch", "torchao", "ai_edge_litert")  # the table omits torchao
ONNX2TF_NEEDS = ONNX_NEEDS + ("onnx2tf", "tensorflow", "tf_keras", "onnxsim", "onnx_graphsurgeon",
                              "sng4onnx", "ai_edge_litert")

FORMATS = {f.name: f for f in (
    Format("pytorch", "PyTorch (reference)", "model.safetensors", "float32", "NCHW", (-1, 1, 28, 28),
           "the training checkpoint (safetensors + model.json)", ("torch", "safetensors"),
           ("pytorch",), ("torch", "pt", "safetensors")),
    Format("onnx", "ONNX", "model.onnx", "float32", "NCHW", (-1, 1, 28, 28),
           "torch.onnx (dynamo), opset 18, dynamic batch", ONNX_NEEDS, ("onnxruntime", "opencv"),
           ("onnx_float32", "onnx32"), int8="onnx_int8", converter="onnx"),
    Format("onnx_int8", "ONNX int8", "model_int8.onnx", "int8", "NCHW", (-1, 1, 28, 28),
           "onnxruntime static QDQ, S8S8, per-channel", ONNX_NEEDS + ("onnxruntime",),
           ("onnxruntime", "opencv"), ("onnx8", "ort_int8", "onnxruntime_int8"), converter="onnx_int8"),
    Format("tflite", "TFLite", "model_float32.tflite", "float32", "NHWC", (1, 28, 28, 1),
           "litert-torch", TFLITE_NEEDS, ("litert",),
           ("litert", "tflite_float32", "litert_float32", "tfl"), int8="tflite_int8", converter="litert"),
    Format("tflite_int8", "TFLite int8", "model_int8.tflite", "int8", "NHWC", (1, 28, 28, 1),
           "litert-torch, PT2E full-integer, float32 I/O", TFLITE_NEEDS,
           ("litert",), ("litert_int8", "tflite8"), converter="litert_int8"),
    Format("tflite_onnx2tf", "TFLite via onnx2tf", "model_onnx2tf_float32.tflite", "float32", "NHWC",
           (1, 28, 28, 1), "ONNX -> onnx2tf (TensorFlow) -> TFLite", ONNX2TF_NEEDS, ("litert",),
           ("onnx2tf", "onnx2tf_float32", "tensorflow", "tf"), int8="tflite_onnx2tf_int8", converter="onnx2tf"),
    Format("tflite_onnx2tf_int8", "TFLite int8 via onnx2tf", "model_onnx2tf_int8.tflite", "int8",
           "NHWC", (1, 28, 28, 1), "ONNX -> onnx2tf full-integer, float32 I/O", ONNX2TF_NEEDS,
           ("litert",), ("onnx2tf_int8", "tf_int8"), converter="onnx2tf"),
)}
EXPORTABLE = tuple(name for name, f in FORMATS.items() if not f.reference)


def by_suffix(suffix: str, int8: bool) -> Format:
    """The first row (table order) for a file suffix and weight type: what a file without
    metadata is taken to be."""
    for f in FORMATS.values():
        if f.suffix == suffix and (f.dtype == "int8") == int8:
            return f
    raise EdgeDigitsError(f"no format for a {'int8' if int8 else 'float32'} {suffix} file")
LABELS_FILE = "labels.txt"


def _key(text: str) -> str:
    return text.strip().lower().replace("-", "_").replace(" ", "_")


def _lookup() -> dict:
    table = {}
    for f in FORMATS.values():
        for key in (f.name, *f.aliases):
            table[_key(key)] = f.name
    return table


def get(name: str) -> Format:
    """A format by name or alias (case and -/_ do not matter); a one-line error with a suggestion."""
    lookup = _lookup()
    key = _key(name)
    if key in lookup:
        return FORMATS[lookup[key]]
    close = difflib.get_close_matches(key, list(lookup), n=1, cutoff=0.6)
    hint = f"did you mean {lookup[close[0]]!r}? " if close else ""
    raise EdgeDigitsError(f"unknown format {name!r}; {hint}valid formats: {', '.join(FORMATS)}")


def resolve(names, int8: bool = False, default=EXPORTABLE) -> list:
    """Comma-separated names or a list of them -> Formats, in table order, without duplicates.
    With int8=True each float32 format is replaced by its int8 variant (as Ultralytics' int8=True)."""
    if isinstance(names, str):
        names = names.split(",")
    names = [n for n in (names or []) if n.strip()] or list(default)
    chosen = [get(n) for n in names]
    if int8:
        chosen = [FORMATS[f.int8] if f.int8 else f for f in chosen]
    wanted = {f.name for f in chosen}
    return [f for f in FORMATS.values() if f.name in wanted]


def missing_modules(fmt: Format) -> list:
    """The modules exporting a format needs (its converter, and the runtime that checks the file)
    that are not installed; checked without importing them."""
    needed = dict.fromkeys([*fmt.needs, RUNTIMES[fmt.runtimes[0]].module])
    return [m for m in needed if importlib.util.find_spec(m) is None]


def markdown_table() -> str:
    """The README's formats section, rendered from the table."""
    rows = ["| format | `--format` (aliases) | file | weights | input | made by | export needs | runs in |",
            "|---|---|---|---|---|---|---|---|"]
    for f in FORMATS.values():
        names = f"`{f.name}`" + (f" ({', '.join(a.replace('_', '-') for a in f.aliases)})" if f.aliases else "")
        shape = "[" + ",".join("N" if d == -1 else str(d) for d in f.shape) + "] " + f.layout
        runs = ", ".join(RUNTIMES[r].title for r in f.runtimes)
        needs = ", ".join(m for m in f.needs if m not in ("tf_keras", "onnx_graphsurgeon", "sng4onnx", "torchao"))
        rows.append(f"| {f.title} | {names} | `{f.file}` | {f.dtype} | {shape} float32 | {f.made_by} | {needs} | {runs} |")
    return "\n".join(rows)


def shown(path) -> str:
    """A path as messages and reports show it: relative to the current folder when inside it."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
