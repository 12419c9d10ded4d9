"""The standard TFLite model metadata (what Android Studio's model import and the LiteRT
support/metadata libraries read) in every shipped .tflite, read back with the official reader:
tflite-support's `MetadataDisplayer` and `MetadataPopulator` validation, and its C++ parser-version
check. The reader runs in a subprocess with TensorFlow hidden (tflite-support would otherwise
import it to open files), so the test costs seconds, not TensorFlow's import.
"""

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from edgedigits.export import formats, metadata

TFLITE = [name for name in formats.EXPORTABLE if formats.FORMATS[name].suffix == ".tflite"]

READER = r"""
import json, sys
sys.modules["tensorflow"] = None          # tflite-support then opens files with plain open()
from tensorflow_lite_support.metadata.python import metadata as md
from tensorflow_lite_support.metadata.cc.python import _pywrap_metadata_version

out = {}
for path in sys.argv[1:]:
    shown = md.MetadataDisplayer.with_model_file(path)
    buffer = shown.get_metadata_buffer()
    populator = md.MetadataPopulator.with_model_buffer(open(path, "rb").read())
    populator.load_metadata_buffer(buffer)          # validates: one subgraph, a metadata per tensor
    out[path] = {"metadata": json.loads(shown.get_metadata_json()),
                 "packed": sorted(shown.get_packed_associated_file_list()),
                 "recorded": sorted(populator.get_recorded_associated_file_list()),
                 "labels": shown.get_associated_file_buffer("labels.txt").decode(),
                 "min_parser_version": _pywrap_metadata_version.GetMinimumMetadataParserVersion(bytes(buffer))}
print(json.dumps(out))
"""


def official_reader(*paths) -> dict:
    result = subprocess.run([sys.executable, "-c", READER, *map(str, paths)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def shipped_tflite(shipped_dir) -> list:
    paths = [shipped_dir / formats.FORMATS[name].file for name in TFLITE]
    assert all(p.exists() for p in paths), "run `edgedigits export`"
    return paths


@pytest.fixture(scope="module")
def read_back(shipped_tflite) -> dict:
    return official_reader(*shipped_tflite)


def flatbuffer_only(data: bytes) -> bytes:
    """The model without the associated-files zip appended to it."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return data[:min(info.header_offset for info in z.infolist())]


def test_official_reader_reads_name_labels_and_value_range(shipped_tflite, read_back, shipped_dir):
    labels = json.loads((shipped_dir / "model.json").read_text())["labels"]
    for path in shipped_tflite:
        ours, got = metadata.read(path), read_back[str(path)]
        model = got["metadata"]
        assert model["name"] == ours["name"] == "edgedigits-cnn"
        assert model["version"] == ours["version"] and model["author"] and model["license"] == "MIT"
        assert f"{ours['accuracy']['mnist_test']:.2%}" in model["description"]
        (graph,) = model["subgraph_metadata"]
        (image,), (logits,) = graph["input_tensor_metadata"], graph["output_tensor_metadata"]
        assert image["stats"] == {"min": [0.0], "max": [1.0]}          # the value range
        assert image["content"]["content_properties"] == {"color_space": "GRAYSCALE"}
        assert "process_units" not in image          # no normalisation: [0, 1] values go in as they are
        assert "white ink" in image["description"] and str(ours["input"]["shape"]) in image["description"]
        assert logits["associated_files"][0]["name"] == "labels.txt"
        assert logits["associated_files"][0]["type"] == "TENSOR_AXIS_LABELS"
        assert got["labels"].split() == labels == ours["labels"]
        if "none" in labels:
            assert f"p(none) > {ours['output']['none_threshold']}" in logits["description"]
        assert got["packed"] == got["recorded"] == ["labels.txt", "metadata.json"]
        assert model["min_parser_version"] == got["min_parser_version"] == metadata.MIN_PARSER_VERSION


CODEGEN = r"""
import sys
from tensorflow_lite_support.codegen.python import _pywrap_codegen

generator = _pywrap_codegen.AndroidJavaGenerator(sys.argv[2])
result = generator.generate(open(sys.argv[1], "rb").read(), "com.example.digits", "DigitClassifier",
                            "model_int8.tflite")
print(generator.get_error_message().strip(), file=sys.stderr)
sys.stdout.write(next(f.content for f in result.files if f.path.endswith("DigitClassifier.java")))
"""


def test_android_wrapper_generator_reads_it(shipped_tflite, tmp_path):
    """tflite-support's Android code generator (what Android Studio's ML Model Binding runs on
    import) makes a wrapper that names the model, returns labelled scores and passes the [0, 1]
    input through untouched (a grayscale image is taken as a plain tensor)."""
    path = shipped_tflite[TFLITE.index("tflite_int8")]
    result = subprocess.run([sys.executable, "-c", CODEGEN, str(path), str(tmp_path)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    java, meta = result.stdout, metadata.read(path)
    assert f"Wrapper class of model {meta['name']} (Version: {meta['version']})" in java
    assert "public Outputs process(TensorBuffer image)" in java
    assert "public List<Category> getLogitsAsCategoryList()" in java
    assert "getAssociatedFile(logitsLabelsFileName)" in java and "new NormalizeOp" not in java
    assert "[WARN] Found Non-RGB image" in result.stderr and "ERROR" not in result.stderr.upper()


def test_associated_files_are_stored_uncompressed(shipped_tflite):
    """Android's metadata extractor (Java) reads only uncompressed zip members."""
    for path in shipped_tflite:
        with zipfile.ZipFile(path) as z:
            assert {i.filename: i.compress_type for i in z.infolist()} == \
                   {"labels.txt": zipfile.ZIP_STORED, "metadata.json": zipfile.ZIP_STORED}


def test_shipped_files_are_what_the_writer_writes(shipped_tflite, tmp_path):
    """Writing the metadata again over a shipped file gives the same bytes (the TFLITE_METADATA
    buffer is replaced, not added twice): the shipped files come from this writer."""
    for path in shipped_tflite:
        data = path.read_bytes()
        again = tmp_path / path.name
        again.write_bytes(flatbuffer_only(data))
        metadata.write_tflite(again, metadata.read(path))
        assert again.read_bytes() == data, f"{path.name}: re-export it (`make ship`)"


def test_runtime_reads_the_rewritten_file(shipped_tflite, tmp_path):
    """A renamed model: the official reader and the runtime both see the new metadata, the model
    still runs, and the file keeps one TFLITE_METADATA entry."""
    runtime = pytest.importorskip("edgedigits.runtime")
    from ai_edge_litert.tools import flatbuffer_utils

    path = shipped_tflite[TFLITE.index("tflite_int8")]
    meta = dict(metadata.read(path), name="edgedigits-renamed", version="edgedigits 9.9")
    target = tmp_path / "renamed.tflite"
    target.write_bytes(flatbuffer_only(path.read_bytes()))
    metadata.write_tflite(target, meta)
    model = official_reader(target)[str(target)]["metadata"]
    assert (model["name"], model["version"]) == ("edgedigits-renamed", "edgedigits 9.9")
    entries = flatbuffer_utils.read_model_from_bytearray(bytearray(target.read_bytes())).metadata
    assert [e.name for e in entries].count(b"TFLITE_METADATA") == 1
    recognizer = runtime.Recognizer(target)
    assert recognizer.metadata == meta and recognizer.labels == meta["labels"]
    assert recognizer.none_threshold == meta["output"]["none_threshold"]
    original = runtime.Recognizer(path)
    crops = np.random.default_rng(0).random((4, 28, 28), dtype=np.float32)
    assert np.array_equal(recognizer.predict(crops), original.predict(crops))


def test_missing_schema_module_is_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_lite_support.metadata.metadata_schema_py_generated", None)
    with pytest.raises(metadata.EdgeDigitsError, match="pip install --no-deps tflite-support"):
        metadata.check_tflite_writer()
