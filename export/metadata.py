"""The metadata every exported file carries, so a runtime needs nothing but the file.

One JSON object (see `build`). Where it lives:
- ONNX: `metadata_props` key "edgedigits", the value is the JSON string.
- TFLite: the standard TFLite model metadata that Android Studio and the LiteRT support/metadata
  libraries read (`tflite_model_metadata`: a `ModelMetadata` flatbuffer of the official
  `metadata_schema.fbs`, stored in the model's "TFLITE_METADATA" buffer), and its associated files
  `labels.txt` and `metadata.json` packed, uncompressed, into a zip appended to the flatbuffer (as
  tflite-support's MetadataPopulator packs them; interpreters ignore trailing bytes).

The runtime implements its own reader of this contract (runtime/ never imports export/);
`read` here serves the benchmark and the tests.
"""

import importlib
import io
import json
import zipfile
from pathlib import Path

from edgedigits import __version__
from edgedigits.common import sha256
from edgedigits.errors import EdgeDigitsError

ONNX_KEY = "edgedigits"
TFLITE_MEMBER = "metadata.json"
LABELS = [str(d) for d in range(10)]
TFLITE_METADATA = "TFLITE_METADATA"   # the Model.metadata entry Android tooling reads
AUTHOR = "edgedigits"
LICENSE = "MIT"
# The oldest metadata parser that reads what tflite_model_metadata writes (every field it uses is
# in metadata_schema.fbs 1.0.0); a test checks it against tflite-support's own computation.
MIN_PARSER_VERSION = "1.0.0"


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
    """The zip archive appended to a .tflite file: labels.txt and metadata.json, stored
    uncompressed (the Java metadata extractor of Android's support library reads only those)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as z:
        for name, text in (("labels.txt", "\n".join(meta["labels"]) + "\n"),
                           (TFLITE_MEMBER, json.dumps(meta, indent=2))):
            z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), text)  # same bytes every export
    return buffer.getvalue()


def tflite_model_metadata(meta: dict) -> bytes:
    """The standard TFLite model metadata of one file: a ModelMetadata flatbuffer (official
    metadata_schema.fbs, Python module from tflite-support) with name, version, author, license,
    the input as a grayscale image with its value range, the output with labels.txt attached."""
    import flatbuffers
    from tensorflow_lite_support.metadata import metadata_schema_py_generated as fb

    labels, out = meta["labels"], meta["output"]
    image = fb.TensorMetadataT()
    image.name = "image"
    image.description = (f"One handwritten digit as an MNIST-style crop: float32 {meta['input']['shape']} "
                         f"({meta['input']['layout']}), white ink (1.0) on black (0.0), values in [0, 1], "
                         "fitted into 20x20 and centred by centre of mass in 28x28 (docs/embedding.md). "
                         "Normalisation is inside the model.")
    image.content = fb.ContentT()
    image.content.contentPropertiesType = fb.ContentProperties.ImageProperties
    image.content.contentProperties = fb.ImagePropertiesT()
    image.content.contentProperties.colorSpace = fb.ColorSpaceType.GRAYSCALE
    # No NormalizationOptions: the values go in as they are, in [0, 1] (a generated Android wrapper
    # would otherwise apply (x - mean) / std to what the app passes).
    image.stats = fb.StatsT()
    image.stats.min, image.stats.max = [float(v) for v in meta["input"]["range"][:1]], \
        [float(v) for v in meta["input"]["range"][1:]]

    logits = fb.TensorMetadataT()
    logits.name = "logits"
    reject = (f" Not a handwritten digit when p({out['none_label']}) > {out['none_threshold']}; else the digit "
              "is the argmax of the first ten.") if "none_label" in out else " The digit is the argmax."
    logits.description = (f"float32 {out['shape']}: {out['kind']} for the labels {', '.join(labels)} "
                           f"(labels.txt, in that order); softmax gives probabilities.{reject}")
    logits.content = fb.ContentT()
    logits.content.contentPropertiesType = fb.ContentProperties.FeatureProperties
    logits.content.contentProperties = fb.FeaturePropertiesT()
    logits.associatedFiles = [associated_file("labels.txt", "The labels of the output, one per line, in order.",
                                              fb.AssociatedFileType.TENSOR_AXIS_LABELS)]

    graph = fb.SubGraphMetadataT()
    graph.name = "digit_classifier"
    graph.inputTensorMetadata, graph.outputTensorMetadata = [image], [logits]

    model = fb.ModelMetadataT()
    model.name = meta["name"]
    model.description = (f"Handwritten digit classifier ({meta['format']}, {meta['dtype']}): MNIST test "
                         f"accuracy {meta['accuracy']['mnist_test']:.2%} on {meta['accuracy']['n']} digits.")
    model.version = meta["version"]
    model.author = AUTHOR
    model.license = LICENSE
    model.subgraphMetadata = [graph]
    model.associatedFiles = [associated_file(TFLITE_MEMBER, "edgedigits metadata (JSON): preprocessing, "
                                             "none_threshold, accuracy, source checkpoint.",
                                             fb.AssociatedFileType.DESCRIPTIONS)]
    model.minParserVersion = MIN_PARSER_VERSION
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), b"M001")      # metadata_schema.fbs: file_identifier "M001"
    return bytes(builder.Output())


def check_tflite_writer() -> None:
    """A one-line error, before any slow work, when the official metadata schema module is missing.
    tflite-support pins protobuf<4 for its Task Library, so it goes in with --no-deps (make setup)."""
    try:
        importlib.import_module("tensorflow_lite_support.metadata.metadata_schema_py_generated")
    except ImportError:
        raise EdgeDigitsError("writing TFLite metadata needs tflite-support's schema module; install it "
                              "with: pip install --no-deps tflite-support==0.4.4") from None


def associated_file(name: str, description: str, kind: int):
    from tensorflow_lite_support.metadata import metadata_schema_py_generated as fb

    entry = fb.AssociatedFileT()
    entry.name, entry.description, entry.type = name, description, kind
    return entry


def with_model_metadata(data: bytes, metadata_buffer: bytes) -> bytes:
    """The .tflite flatbuffer with `metadata_buffer` as its "TFLITE_METADATA" entry (replaced if
    present), as tflite-support's MetadataPopulator stores it."""
    import numpy as np
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(metadata_buffer, dtype=np.uint8)
    model.metadata = model.metadata or []
    entry = next((m for m in model.metadata if m.name in (TFLITE_METADATA, TFLITE_METADATA.encode())), None)
    if entry is None:
        entry = schema.MetadataT()
        entry.name, entry.buffer = TFLITE_METADATA, len(model.buffers)
        model.buffers.append(buffer)
        model.metadata.append(entry)
    else:
        model.buffers[entry.buffer] = buffer
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def write_tflite(path: Path, meta: dict) -> None:
    """Give a .tflite file without metadata the standard model metadata and its associated files."""
    path = Path(path)
    data = with_model_metadata(path.read_bytes(), tflite_model_metadata(meta))
    path.write_bytes(data + tflite_payload(meta))


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
