"""The metadata every exported file carries, so a runtime needs nothing but the file.

One JSON object (see `build`). Where it lives:
- ONNX: `metadata_props` key "edgedigits", the value is the JSON string.
- TFLite: a zip archive appended to the end of the flatbuffer, holding `metadata.json` and
  `labels.txt`. Interpreters ignore trailing bytes, and `zipfile.ZipFile(path)` finds an archive
  at the end of any file (the trick Ultralytics and TFLite "associated files" use).

The runtime implements its own reader of this contract (runtime/ never imports export/);
`read` here serves the benchmark and the tests.
"""

import io
import json
import zipfile
from pathlib import Path

from edgedigits import __version__
from edgedigits.common import sha256

ONNX_KEY = "edgedigits"
TFLITE_MEMBER = "metadata.json"
LABELS = [str(d) for d in range(10)]


def build(fmt, config: dict, weights: Path, accuracy: float, n: int, **extra) -> dict:
    """The metadata object of one exported file (`fmt` is a formats.Format)."""
    labels = config.get("labels", LABELS)
    batch_shape = list(fmt.shape)
    return {
        "name": f"edgedigits-{config['model']}",
        "format": fmt.name,
        "dtype": fmt.dtype,
        "labels": labels,
        "input": {"shape": batch_shape, "layout": fmt.layout, "dtype": "float32", "range": [0.0, 1.0],
                  "ink": "white on black", "preprocess": "mnist-20x20-com"},
        "output": output_meta(config, batch_shape[0], labels),
        "normalization": {"mean": 0.1307, "std": 0.3081, "where": "inside the model"},
        "source": {"checkpoint": weights.name, "sha256": sha256(weights)},
        "accuracy": {"mnist_test": round(float(accuracy), 6), "n": int(n)},
        "version": f"edgedigits {__version__}",
        **extra,
    }


def output_meta(config: dict, batch: int, labels: list) -> dict:
    """The output contract: one score per label; an 11-class model also says above which
    probability its "none" (not a digit) class rejects a mark."""
    out = {"shape": [batch, len(labels)], "kind": "logits"}
    if any(not label.isdigit() for label in labels):
        out["none_label"] = next(label for label in labels if not label.isdigit())
        out["none_threshold"] = float(config.get("none_threshold", 0.5))
    return out


def write_onnx(model, meta: dict):
    """Set the metadata on an onnx.ModelProto (replacing an older edgedigits entry)."""
    props = [p for p in model.metadata_props if p.key != ONNX_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(props)
    entry = model.metadata_props.add()
    entry.key, entry.value = ONNX_KEY, json.dumps(meta)
    return model


def tflite_payload(meta: dict) -> bytes:
    """The zip archive appended to a .tflite file: metadata.json and labels.txt."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(TFLITE_MEMBER, json.dumps(meta, indent=2))
        z.writestr("labels.txt", "\n".join(meta["labels"]) + "\n")
    return buffer.getvalue()


def append_tflite(path: Path, meta: dict) -> None:
    """Append the metadata archive to a .tflite file that has none yet."""
    with open(path, "ab") as f:
        f.write(tflite_payload(meta))


def read(path: Path) -> dict | None:
    """The metadata of an exported file, or None when it carries none (or is not ours)."""
    path = Path(path)
    if path.suffix == ".tflite":
        if not zipfile.is_zipfile(path):
            return None
        with zipfile.ZipFile(path) as z:
            if TFLITE_MEMBER not in z.namelist():
                return None
            return json.loads(z.read(TFLITE_MEMBER))
    if path.suffix == ".onnx":
        import onnx

        model = onnx.load(str(path), load_external_data=False)
        value = next((p.value for p in model.metadata_props if p.key == ONNX_KEY), None)
        return json.loads(value) if value else None
    return None
