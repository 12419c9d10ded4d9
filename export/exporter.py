"""Export a checkpoint to the formats of the table (formats.py), each one checked before it counts.

For every format: convert into a temporary folder inside `out_dir`; measure the file's accuracy on
the 10k MNIST test digits with its own runtime; refuse it if it broke the model (or if an "int8"
file holds float weights); embed the metadata; load it again and run a digit through it; only then
rename it into place. A crash leaves no half-written file behind, and `labels.txt` goes beside.

    from edgedigits.export.exporter import export
    export(Path("models/cnn/model.safetensors"), ["onnx", "tflite_int8"], Path("models/cnn"))
"""

import copy
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgedigits.common import atomic_write, write_checksum
from edgedigits.errors import EdgeDigitsError
from edgedigits.train.checkpoint import load_checkpoint, resolve_weights
from edgedigits.train.data import load_mnist

from . import metadata, quantize, runners
from .formats import FORMATS, LABELS_FILE, RUNTIMES, Format, missing_modules, resolve, shown
from .runners import quiet

ONNX_OPSET = 18  # the dynamo exporter's own opset; onnxruntime >= 1.14, OpenCV dnn 4.x, onnx2tf
MIN_INT8_WEIGHTS = 0.9  # an int8 file must store at least this share of its weights as int8
MAX_ACCURACY_DROP = 0.01  # an export that loses more than 1 point is broken, not quantized


class ExportError(EdgeDigitsError):
    """A conversion that failed or produced a file that does not behave like the checkpoint."""


class NHWC(nn.Module):
    """Channels-last input [N, 28, 28, 1], as mobile apps hold images, for the TFLite files.
    The keyword input and the dict output name the signature: inputs ["image"], outputs ["logits"]."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, image):
        return {"logits": self.model(image.permute(0, 3, 1, 2))}


def inference_copy(model: nn.Module) -> nn.Module:
    """An eval-mode copy without Dropout (an identity at inference). Dropout left in the graph
    makes PT2E observe the classifier input twice, and litert-torch then quantizes the head's
    bias with the wrong input scale (mean |logit error| 0.18 instead of 0.02)."""
    model = copy.deepcopy(model).eval()
    for module in list(model.modules()):
        for name, child in module.named_children():
            if isinstance(child, nn.Dropout):
                setattr(module, name, nn.Identity())
    return model


# --------------------------------------------------------------------------------- converters

def clean_onnx(model):
    """Drop what the exporters add beyond the graph: value_info shape hints (OpenCV dnn 4.x and
    onnx2tf misread the dynamo exporter's: OpenCV fails to load the file, onnx2tf to convert it),
    per-node metadata (stack traces with local paths, about 25 KB) and the opset imports of
    domains no node uses (onnxruntime's quantizer declares nine)."""
    graph = model.graph
    del graph.value_info[:]
    for item in [*graph.node, *graph.input, *graph.output, *graph.initializer]:
        del item.metadata_props[:]
        item.doc_string = ""
    model.doc_string = graph.doc_string = ""
    used = {node.domain for node in graph.node} | {""}
    keep = [o for o in model.opset_import if o.domain in used]
    del model.opset_import[:]
    model.opset_import.extend(keep)
    return model


def scalars_as_vectors(model):
    """Scalar (0-d) constants of elementwise ops become shape [1], the same under broadcasting.
    Applied before int8 quantization only: OpenCV dnn 4.x cannot dequantize a 0-d tensor (the
    Normalize multiply-add), while onnx2tf mislays the layout of a [1] constant in the float file."""
    elementwise = {"Mul", "Add", "Sub", "Div"}
    names = {name for node in model.graph.node if node.op_type in elementwise for name in node.input}
    for init in model.graph.initializer:
        if init.name in names and len(init.dims) == 0:
            init.dims.append(1)
    return model


def lean_tflite(data: bytes) -> bytes:
    """Clear the names of intermediate tensors (debug strings such as
    "__main__.NHWC/edgedigits.train.models.ConvNet_m/...", 3-4% of a small int8 file). The
    input and output names and the signature stay."""
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    for graph in model.subgraphs:
        keep = set(graph.inputs) | set(graph.outputs)
        for index, tensor in enumerate(graph.tensors):
            if index not in keep:
                tensor.name = None
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def short_names(model):
    """Rename intermediate tensors to t0, t1, ... and clear node names. The quantizer's names
    ("/features/features.3/.../Conv_output_0_QuantizeLinear_Output", each used several times)
    are about 5% of a small int8 file. Graph input and output names stay."""
    graph = model.graph
    keep = {v.name for v in [*graph.input, *graph.output]} | {""}
    names = {}

    def short(name):
        return name if name in keep else names.setdefault(name, f"t{len(names)}")

    for init in graph.initializer:
        init.name = short(init.name)
    for node in graph.node:
        node.name = ""
        node.input[:] = [short(n) for n in node.input]
        node.output[:] = [short(n) for n in node.output]
    return model


def export_onnx(model: nn.Module, path: Path) -> Path:
    """float32 ONNX, NCHW input "image" [N, 1, 28, 28] with a dynamic batch, output "logits"."""
    import onnx

    batch = torch.export.Dim("batch", min=1, max=4096)
    torch.onnx.export(model, (torch.zeros(2, 1, 28, 28),), str(path), input_names=["image"],
                      output_names=["logits"], opset_version=ONNX_OPSET, dynamo=True,
                      dynamic_shapes=({0: batch},), verbose=False)
    proto = clean_onnx(onnx.load(str(path)))
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    return path


def export_onnx_int8(float_onnx: Path, path: Path, calib: np.ndarray) -> Path:
    import onnx

    source = path.with_name(path.stem + ".float.onnx")
    onnx.save(scalars_as_vectors(onnx.load(str(float_onnx))), str(source))
    quantize.quantize_onnx(source, path, calib)
    source.unlink()
    proto = short_names(clean_onnx(onnx.load(str(path))))
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    return path


def export_tflite(model: nn.Module, path: Path) -> Path:
    """float32 TFLite through litert-torch, input NHWC [1, 28, 28, 1]."""
    import litert_torch

    litert_torch.config.show_progress = False
    edge = litert_torch.convert(NHWC(model).eval(), sample_kwargs={"image": torch.zeros(1, 28, 28, 1)})
    path.write_bytes(lean_tflite(edge.model_content()))
    return path


def export_tflite_int8(model: nn.Module, path: Path, calib: np.ndarray) -> Path:
    """Full-integer TFLite through PT2E + litert-torch, with float32 I/O (see quantize.float_io)."""
    import litert_torch
    from litert_torch.quantize.quant_config import QuantConfig

    litert_torch.config.show_progress = False
    graph, quantizer = quantize.quantize_pt2e(NHWC(model).eval(), calib[..., None])
    edge = litert_torch.convert(graph, sample_kwargs={"image": torch.zeros(1, 28, 28, 1)},
                                quant_config=QuantConfig(pt2e_quantizer=quantizer))
    path.write_bytes(lean_tflite(quantize.float_io(edge.model_content())))
    return path


def export_onnx2tf(float_onnx: Path, work: Path, calib: np.ndarray, int8: bool) -> dict:
    """ONNX -> onnx2tf (TensorFlow) -> TFLite float32, and full-integer int8 with float32 I/O
    calibrated on our own digits (its default calibration is ImageNet images and mean/std).

    onnx2tf runs in a subprocess: it rewrites its input file (so it gets a copy), finds `onnxsim`
    on PATH (this interpreter's bin folder goes first), and TensorFlow stays out of this process."""
    import onnx

    work = work.resolve()           # the subprocess runs in `work`: every path it gets is absolute
    work.mkdir(parents=True, exist_ok=True)
    source = work / "model.onnx"
    shutil.copy(float_onnx, source)
    name = onnx.load(str(source)).graph.input[0].name
    cmd = [sys.executable, "-m", "onnx2tf", "-i", str(source), "-o", str(work / "out"), "-b", "1", "-n"]
    if int8:
        np.save(work / "calib.npy", calib[..., None].astype(np.float32))  # NHWC, already in [0, 1]
        cmd += ["-oiqt", "-qt", "per-channel", "-iqd", "float32", "-oqd", "float32",
                "-cind", name, str(work / "calib.npy"), "[[[[0.0]]]]", "[[[[1.0]]]]"]  # mean 0, std 1
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
               TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
    outputs = {"tflite_onnx2tf": work / "out" / "model_float32.tflite",
               "tflite_onnx2tf_int8": work / "out" / "model_full_integer_quant.tflite"}
    if result.returncode != 0 or not outputs["tflite_onnx2tf"].exists():
        text = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)     # onnx2tf colours its log
        lines = [l for l in text.splitlines() if "ERROR" in l or "Error" in l]
        raise ExportError(f"onnx2tf failed ({(lines or ['exit code %d' % result.returncode])[-1].strip()[:200]})")
    return outputs


# ------------------------------------------------------------------------------------ checking

@dataclass
class Reference:
    """What every converted file is checked against: the checkpoint and its test-set answers."""

    weights: Path
    config: dict
    test_x: np.ndarray     # float32 [10000, 28, 28] in [0, 1]
    test_y: np.ndarray
    pred: np.ndarray       # PyTorch's argmax on test_x
    calib_n: int

    @property
    def accuracy(self) -> float:
        return float((self.pred == self.test_y).mean())


@torch.inference_mode()
def torch_predictions(model: nn.Module, x: np.ndarray, batch: int = 1000) -> np.ndarray:
    return np.concatenate([model(torch.from_numpy(x[i:i + batch, None])).argmax(1).numpy()
                           for i in range(0, len(x), batch)])


def tools(fmt: Format) -> dict:
    names = ("litert-torch", "onnx", "onnx2tf", "onnxruntime", "tensorflow", "torch")
    return {n: version(n) for n in names if n.replace("-", "_") in fmt.needs}


def finish(fmt: Format, tmp_file: Path, out_dir: Path, ref: Reference, log, t0: float) -> Path:
    """Measure, check, label, reload and move one converted file into out_dir."""
    runtime = fmt.runtimes[0]
    pred = runners.predict(runners.load(runtime, tmp_file), ref.test_x).argmax(1)
    accuracy = float((pred == ref.test_y).mean())
    if accuracy < ref.accuracy - MAX_ACCURACY_DROP:
        raise ExportError(f"{fmt.name}: accuracy {accuracy:.2%} in {RUNTIMES[runtime].title} against "
                          f"{ref.accuracy:.2%} for PyTorch; the conversion broke the model")
    extra = {"made_by": fmt.made_by, "tools": tools(fmt)}
    if fmt.dtype == "int8":
        share = quantize.int8_weight_fraction(tmp_file)
        if share < MIN_INT8_WEIGHTS:
            raise ExportError(f"{fmt.name}: only {share:.0%} of the weights are int8; not an int8 model")
        extra["quantization"] = {"calibration": quantize.describe(ref.calib_n), "int8_weights": round(share, 4),
                                 "io": "float32 in and out; int8 inside"}
    meta = metadata.build(fmt, ref.config, ref.weights, accuracy, len(pred), **extra)
    if fmt.suffix == ".onnx":
        import onnx

        onnx.save(metadata.write_onnx(onnx.load(str(tmp_file)), meta), str(tmp_file))
    else:
        metadata.write_tflite(tmp_file, meta)
    check = runners.load(runtime, tmp_file).predict(ref.test_x[:1])
    if check.shape != (1, len(ref.config.get("labels", metadata.LABELS))) or not np.isfinite(check).all() \
            or check.argmax() != pred[0]:
        raise ExportError(f"{fmt.name}: the written file does not give the expected output")
    if metadata.read(tmp_file) != meta:
        raise ExportError(f"{fmt.name}: the metadata does not read back")
    final = out_dir / fmt.file
    os.replace(tmp_file, final)
    write_checksum(final)          # the runtime checks it before a native reader sees the file
    log(f"{fmt.name:<20} {shown(final):<40} {final.stat().st_size / 1024:6.1f} KB  accuracy {accuracy:.2%}  "
        f"agrees with PyTorch on {(pred == ref.pred).mean():.2%}  ({time.perf_counter() - t0:.1f} s)")
    return final


def check_modules(formats: list) -> None:
    """One error naming every missing package, before any slow work starts."""
    missing = {m for f in formats for m in missing_modules(f)}
    if missing:
        extra = "onnx2tf" if missing & {"onnx2tf", "tensorflow", "tf_keras", "onnxsim"} else "export"
        raise EdgeDigitsError(f"missing Python packages {', '.join(sorted(missing))} for "
                              f"{', '.join(f.name for f in formats if missing_modules(f))}; "
                              f"install them with: pip install 'edgedigits[{extra}]'")


# ------------------------------------------------------------------------------------- export

# Format.converter -> how that file is written: (fmt, model, target, calibration images, shared)
# where `shared` holds the float ONNX ("onnx") and the onnx2tf outputs (by format name) made once.
CONVERTERS = {
    "onnx": lambda fmt, model, target, calib, shared: shutil.copy(shared["onnx"], target),
    "onnx_int8": lambda fmt, model, target, calib, shared: export_onnx_int8(shared["onnx"], target, calib),
    "litert": lambda fmt, model, target, calib, shared: export_tflite(model, target),
    "litert_int8": lambda fmt, model, target, calib, shared: export_tflite_int8(model, target, calib),
    "onnx2tf": lambda fmt, model, target, calib, shared: target.write_bytes(
        lean_tflite(shared[fmt.name].read_bytes())),
}


def convert(fmt: Format, model: nn.Module, target: Path, calib: np.ndarray, shared: dict) -> None:
    """Write `fmt` to `target` with the converter its table row names."""
    CONVERTERS[fmt.converter](fmt, model, target, calib, shared)


def export(weights: Path, formats: list, out_dir: Path, data_dir=None, log=None) -> list:
    """Write the files of `formats` (names, aliases or Format rows) for the checkpoint `weights`
    into `out_dir`, plus labels.txt; returns the paths written, in table order."""
    log = log or (lambda message: print(message, file=sys.stderr))
    fmts = [f for f in resolve([f.name if isinstance(f, Format) else f for f in formats]) if not f.reference]
    if not fmts:
        raise EdgeDigitsError("nothing to export: pytorch is the reference checkpoint itself; "
                              f"choose from {', '.join(f for f in FORMATS if f != 'pytorch')}")
    check_modules(fmts)
    if any(f.suffix == ".tflite" for f in fmts):
        metadata.check_tflite_writer()
    weights = resolve_weights(weights)
    model, config = load_checkpoint(weights)
    model = inference_copy(model)
    train_images, _, test_images, test_y = load_mnist(data_dir)
    test_x = test_images.astype(np.float32) / 255.0
    calib = quantize.calibration_images(train_images, marks=quantize.MARKS if len(config.get("labels", [])) > 10 else 0)
    ref = Reference(weights, config, test_x, test_y, torch_predictions(model, test_x), len(calib))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx2tf = [f for f in fmts if f.converter == "onnx2tf"]
    written = []
    with tempfile.TemporaryDirectory(prefix=".export-", dir=out_dir) as tmp:
        tmp, shared = Path(tmp), {}
        if any(f.from_float_onnx for f in fmts):
            with quiet():
                shared["onnx"] = export_onnx(model, tmp / "float.onnx")
        if onnx2tf:
            t0 = time.perf_counter()
            shared.update(export_onnx2tf(shared["onnx"], tmp / "onnx2tf", calib,
                                         any(f.dtype == "int8" for f in onnx2tf)))
            log(f"{'(onnx2tf)':<20} converted in a subprocess ({time.perf_counter() - t0:.1f} s)")
        for fmt in fmts:
            t0 = time.perf_counter()
            with quiet():
                convert(fmt, model, tmp / fmt.file, calib, shared)
            written.append(finish(fmt, tmp / fmt.file, out_dir, ref, log, t0))
    labels = out_dir / LABELS_FILE
    atomic_write(labels, "\n".join(config.get("labels", metadata.LABELS)) + "\n")
    return written
