"""The on-device runtime: recognizer backends, MNIST normalisation, synthetic pages, bad input.

Real MNIST test digits are pasted on synthetic paper (with shadows, noise, pencil-thin strokes, a
tilted sheet on a dark desk, and at several resolutions) where the right answer is known exactly;
the real photos are in test_paper.py. Budget: about 30 s on 2 shared cores.
"""

import json
import platform
import subprocess
import sys
import zipfile

import cv2
import numpy as np
import pytest

from edgedigits.errors import EdgeDigitsError
from edgedigits.runtime import Recognizer, annotate, load_image, normalize_digit, read_page
from edgedigits.runtime.evaluate import edit_distance
from edgedigits.runtime import cli
from edgedigits.runtime.recognizer import BACKENDS, default_model_path, installed

HEAVY = ("torch", "tensorflow", "litert_torch", "onnx2tf")


# --- fixtures ------------------------------------------------------------------------------------

def export_onnx(out_path):
    """The shipped checkpoint as ONNX (what the exporter writes), for when no export is shipped yet."""
    torch = pytest.importorskip("torch")
    from edgedigits.models import shipped
    from edgedigits.train.checkpoint import load_checkpoint

    model, _ = load_checkpoint(shipped())
    torch.onnx.export(model, torch.zeros(1, 1, 28, 28), str(out_path), dynamo=False,
                      input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "n"}, "logits": {0: "n"}})
    return out_path


@pytest.fixture(scope="session")
def onnx_path(shipped_dir, tmp_path_factory):
    """The shipped models/cnn/model.onnx, else the shipped checkpoint exported here."""
    path = shipped_dir / "model.onnx"
    return path if path.exists() else export_onnx(tmp_path_factory.mktemp("onnx") / "model.onnx")


@pytest.fixture(scope="session")
def model_path(onnx_path):
    """What `Recognizer()` loads by default (the shipped int8 .tflite), else the ONNX above."""
    try:
        return default_model_path()
    except EdgeDigitsError:
        return onnx_path


@pytest.fixture(scope="session")
def rec(model_path):
    return Recognizer(model_path)


@pytest.fixture(scope="session")
def test_digits(mnist, rec):
    """MNIST test digits (uint8 28x28) the model reads right and surely as they are, and labels."""
    x, y = mnist[2][:3000], mnist[3][:3000]
    probs = rec.predict(x.astype(np.float32) / 255)
    ok = (probs.argmax(1) == y) & (probs.max(1) > 0.95)
    return x[ok], y[ok]


# --- synthetic pages -----------------------------------------------------------------------------

def make_page(digits, labels, rows, per_row, scale, seed=0, contrast=0.8, thin=False, shadow=True):
    """A grey page with MNIST digits written dark-on-paper in rows, scaled by `scale`.

    Returns (page uint8, truth lines, cells (x0, y0, x1, y1) where each digit was pasted)."""
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(digits), rows * per_row, replace=False)
    h, w = int((rows * 46 + 40) * scale), int((per_row * 34 + 60) * scale)
    page = np.full((h, w), 230, np.float32)
    lines, cells = [], []
    for r in range(rows):
        line = ""
        for c in range(per_row):
            k = pick[r * per_row + c]
            d = cv2.resize(digits[k].astype(np.float32), None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
            if thin:   # a fine pen: strokes about 1/4 of MNIST's width
                d = cv2.erode(d, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (int(scale) | 1,) * 2))
            x0 = int((30 + c * 34 + rng.integers(-3, 4)) * scale)
            y0 = int((20 + r * 46 + rng.integers(-4, 5)) * scale)
            region = page[y0:y0 + d.shape[0], x0:x0 + d.shape[1]]
            np.minimum(region, 230 - contrast * np.clip(d, 0, 255), out=region)
            line += str(labels[k])
            cells.append((x0, y0, x0 + d.shape[1], y0 + d.shape[0]))
        lines.append(line)
    if shadow:   # light falling off to 45% across the page, and a little from top to bottom
        page *= np.linspace(1.0, 0.45, w)[None, :] * np.linspace(1.0, 0.85, h)[:, None]
    page += rng.normal(0, 3, page.shape)
    return np.clip(page, 0, 255).astype(np.uint8), lines, cells


def on_desk(page, angle=9.0, seed=0):
    """The page photographed tilted on a dark, textured desk (a perspective view), as BGR."""
    rng = np.random.default_rng(seed)
    h, w = page.shape
    H, W = int(h * 1.8), int(w * 1.6)
    desk = cv2.GaussianBlur(rng.normal(45, 25, (H, W)).astype(np.float32), (0, 0), 1.5)
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    c, s = np.cos(np.radians(angle)), np.sin(np.radians(angle))
    centre = np.float32([W / 2, H / 2])
    dst = np.float32([centre + [[c, -s], [s, c]] @ (p - [w / 2, h / 2]) for p in src])
    dst[2] += [0.04 * w, 0.03 * h]                                       # a bit of perspective
    M = cv2.getPerspectiveTransform(src, dst)
    sheet = cv2.warpPerspective(page.astype(np.float32), M, (W, H))
    inside = cv2.warpPerspective(np.ones_like(page, np.float32), M, (W, H))
    photo = np.clip(inside * sheet + (1 - inside) * desk, 0, 255).astype(np.uint8)
    return cv2.cvtColor(photo, cv2.COLOR_GRAY2BGR), M


def box_centres(result):
    return [(x + w / 2, y + h / 2) for x, y, w, h in (d.box for d in result.digits)]


def assert_in_cells(result, cells, M=None):
    """Each digit box's centre lies in the cell its digit was pasted in (mapped by M if given)."""
    centres = box_centres(result)
    assert len(centres) == len(cells)
    for (cx, cy), (x0, y0, x1, y1) in zip(centres, cells):
        if M is not None:
            (cx, cy), = cv2.perspectiveTransform(np.float32([[[cx, cy]]]), np.linalg.inv(M))[0]
        assert x0 - 3 <= cx <= x1 + 3 and y0 - 3 <= cy <= y1 + 3


# --- recognizer ----------------------------------------------------------------------------------

def test_import_leaves_torch_and_tensorflow_out(model_path):
    """Importing the runtime, and reading a page with the default backend, loads no torch/TF."""
    code = f"""
import sys, numpy as np
import edgedigits.runtime as rt, edgedigits.runtime.cli
assert not [m for m in {HEAVY!r} if m in sys.modules], 'at import'
rec = rt.Recognizer({str(model_path)!r})
rt.read_page(np.full((200, 300, 3), 255, np.uint8), rec)
print(sorted(m for m in {HEAVY!r} if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_pages_read_one_after_another_take_no_page_faults(paper_dir):
    """With `keep_freed_memory` (what the `edgedigits` command calls), reading a 640x480 photo
    again and again reuses the heap: without it glibc hands the freed arrays back to the system
    after each page and takes them back one page fault per 4 KB (2,900 a page, 3.4 ms here)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        pytest.skip("keep_freed_memory tunes glibc's malloc; this is not Linux with glibc")
    code = f"""
import resource, cv2
import edgedigits.runtime as rt
assert rt.keep_freed_memory()
rec = rt.Recognizer()
image = cv2.resize(rt.load_image({str(paper_dir / "hypjudy_photo_4.png")!r}), (480, 640), interpolation=cv2.INTER_AREA)
for _ in range(3):
    rt.read_page(image, rec)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    assert rt.read_page(image, rec).lines
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert float(out.stdout.split()[-1]) < 100          # page faults a page


def test_recognizer_reads_mnist(rec, mnist):
    x, y = mnist[2], mnist[3]
    probs = rec.predict(x.astype(np.float32) / 255)
    assert probs.shape == (10000, len(rec.labels)) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-3)
    assert (probs[:, :10].argmax(1) == y).mean() >= 0.995            # the digit outputs
    assert (probs[:, 10:].sum(1) > rec.none_threshold).mean() <= 0.01  # "none": under 1% of digits
    assert rec.labels[:10] == [str(d) for d in range(10)] and rec.labels[10:] in ([], ["none"])
    assert rec.backend in BACKENDS and cli.BACKENDS == BACKENDS
    name, rest = rec.model_id.split("/")
    assert rest.endswith("@" + rec.sha256[:12])


def test_batches_match_single_crops(rec, mnist):
    x = mnist[2][:40].astype(np.float32) / 255
    one_by_one = np.concatenate([rec.predict(x[i]) for i in range(len(x))])
    for n in (1, 7, 40):
        np.testing.assert_allclose(rec.predict(x[:n]), one_by_one[:n], atol=1e-4)
    assert rec.predict(np.zeros((0, 28, 28), np.float32)).shape == (0, len(rec.labels))
    with pytest.raises(EdgeDigitsError, match="28,28"):
        rec.predict(np.zeros((3, 32, 32), np.float32))


def test_onnx_backends_agree_and_read_metadata(onnx_path, tmp_path, mnist):
    """onnxruntime and OpenCV dnn give the same probabilities and read the same metadata_props."""
    onnx = pytest.importorskip("onnx")
    model = onnx.load(str(onnx_path))
    meta = {"name": "edgedigits-test", "format": "onnx", "labels": list("abcdefghijk"),
            "output": {"shape": [-1, 11], "kind": "logits"}}
    del model.metadata_props[:]
    model.metadata_props.add(key="edgedigits", value=json.dumps(meta))
    path = tmp_path / "labelled.onnx"
    onnx.save(model, str(path))
    x = mnist[2][:300].astype(np.float32) / 255
    ort, ocv = Recognizer(path, backend="onnxruntime"), Recognizer(path, backend="opencv")
    for r in (ort, ocv):
        assert r.labels == list("abcdefghijk") and r.metadata["name"] == "edgedigits-test"
        assert r.model_id.startswith("edgedigits-test/onnx@")
    np.testing.assert_allclose(ort.predict(x), ocv.predict(x), atol=1e-4)
    assert (ort.predict(x).argmax(1) == mnist[3][:300]).mean() >= 0.98


def tflite_files(shipped_dir):
    files = sorted(shipped_dir.glob("*.tflite"))
    if not files or not installed("litert"):
        pytest.skip("no shipped .tflite export (run `edgedigits export`) or no ai-edge-litert")
    return files


def test_shipped_tflite_exports_read_mnist_and_carry_metadata(shipped_dir, mnist):
    """Every shipped .tflite (float or int8, NHWC or NCHW, float or integer I/O) reads MNIST."""
    x, y = mnist[2][:1000].astype(np.float32) / 255, mnist[3][:1000]
    for path in tflite_files(shipped_dir):
        r = Recognizer(path)
        assert (r.predict(x).argmax(1) == y).mean() >= 0.98, path.name
        assert zipfile.is_zipfile(path) and r.metadata.get("labels") == r.labels, path.name
        assert r.model_id.split("/")[1].startswith(r.metadata["format"])


def test_tflite_without_metadata_still_works(shipped_dir, tmp_path, mnist):
    """Strip the appended zip: the layout and quantization come from the tensors themselves."""
    path = tflite_files(shipped_dir)[0]
    data = path.read_bytes()
    with zipfile.ZipFile(path) as z:
        start = min(info.header_offset for info in z.infolist())
    bare = tmp_path / "bare.tflite"
    bare.write_bytes(data[:start])
    r = Recognizer(bare)
    assert r.metadata == {} and r.labels == [str(d) for d in range(10)] + ["none"]   # the 11-output contract
    x, y = mnist[2][:500].astype(np.float32) / 255, mnist[3][:500]
    assert (r.predict(x).argmax(1) == y).mean() >= 0.98


# --- normalisation -------------------------------------------------------------------------------

def test_normalize_rerendered_mnist_keeps_the_label(rec, mnist):
    """An MNIST digit drawn dark on paper at 3.5x, off-centre, with a margin, normalises back."""
    x, y = mnist[2][:400], mnist[3][:400]
    rng = np.random.default_rng(1)
    crops = []
    for d in x:
        big = cv2.resize(d, None, fx=3.5, fy=3.5, interpolation=cv2.INTER_CUBIC)
        paper = np.full((big.shape[0] + 40, big.shape[1] + 60), 220, np.uint8)
        oy, ox = rng.integers(0, 40), rng.integers(0, 60)
        paper[oy:oy + big.shape[0], ox:ox + big.shape[1]] -= (big.astype(np.float32) * 0.7).astype(np.uint8)
        crops.append(normalize_digit(paper))
    crops = np.stack(crops)
    original = rec.predict(x.astype(np.float32) / 255).argmax(1)
    again = rec.predict(crops).argmax(1)
    assert (again == y).mean() >= 0.97
    assert (again == original).mean() >= 0.97


def test_normalize_matches_mnist_geometry(mnist):
    d = mnist[2][7]
    out = normalize_digit(cv2.resize(255 - d, None, fx=5, fy=5), ink="dark")
    assert out.shape == (28, 28) and out.dtype == np.float32
    assert 0 <= out.min() and out.max() <= 1 and out.max() > 0.9
    ys, xs = np.nonzero(out > 0.05)
    assert max(ys.max() - ys.min(), xs.max() - xs.min()) + 1 in (19, 20, 21)       # fitted into 20x20
    m = cv2.moments(out)
    assert abs(m["m10"] / m["m00"] - 14) <= 1 and abs(m["m01"] / m["m00"] - 14) <= 1  # centre of mass
    # polarity: white-on-black and dark-on-white give the same digit
    np.testing.assert_allclose(normalize_digit(d), normalize_digit(255 - d), atol=1e-5)
    assert not normalize_digit(np.full((30, 20), 200, np.uint8)).any()


def test_normalize_matches_mnist_stroke_width(mnist):
    """A fine pen or a marker at high resolution gets MNIST's stroke width back: the ink mass of
    the normalised crop stays near the original MNIST digit's (it does not without matching)."""
    def ink_ratios(op, size, match):
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
        out = []
        for d in mnist[2][:20]:
            big = op(cv2.resize(d, None, fx=8, fy=8, interpolation=cv2.INTER_CUBIC), kernel)
            out.append(normalize_digit(big, match_stroke=match).sum() / (d.sum() / 255))
        return float(np.median(out))

    assert ink_ratios(cv2.erode, 13, False) < 0.7          # hairlines: faint and thin once scaled
    assert 0.8 < ink_ratios(cv2.erode, 13, True) < 1.25
    assert ink_ratios(cv2.dilate, 17, False) > 1.3         # a marker: blobs
    assert 0.8 < ink_ratios(cv2.dilate, 17, True) < 1.25


# --- pages ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("scale", [1.5, 6.0])
def test_reads_synthetic_page_with_shadow_at_any_resolution(rec, test_digits, scale):
    page, lines, cells = make_page(*test_digits, rows=3, per_row=7, scale=scale, seed=int(scale))
    result = read_page(page, rec)
    assert result.lines == lines
    assert_in_cells(result, cells)
    assert [d.line for d in result.digits] == [i for i in range(3) for _ in range(7)]
    d = result.digits[0]
    assert d.crop28.shape == (28, 28) and d.crop.shape[:2] == (d.box[3], d.box[2])
    assert set(result.timings) >= {"prepare", "page", "ink", "lines", "classify", "total"}


def test_reads_thin_faint_pencil(rec, test_digits):
    """Light grey (30% contrast), hairline strokes at high resolution."""
    page, lines, _ = make_page(*test_digits, rows=2, per_row=6, scale=5.0, seed=3, contrast=0.3, thin=True)
    result = read_page(page, rec)
    truth = "".join(lines)
    read = "".join(result.lines)
    assert len(read) == len(truth) and sum(a == b for a, b in zip(read, truth)) >= len(truth) - 1


def test_finds_and_flattens_a_tilted_sheet_on_a_desk(rec, test_digits):
    page, lines, cells = make_page(*test_digits, rows=3, per_row=6, scale=2.5, seed=5, shadow=False)
    photo, M = on_desk(page, angle=9)
    result = read_page(photo, rec)
    assert result.lines == lines
    assert_in_cells(result, cells, M)
    # the sheet's corners were found (in the photo's pixels, within 3% of the sheet's size)
    h, w = page.shape
    corners = cv2.perspectiveTransform(np.float32([[[0, 0], [w, 0], [w, h], [0, h]]]), M)[0]
    assert result.page is not None
    assert np.abs(result.page - corners).max() < 0.03 * max(h, w)


def test_blank_and_tiny_images_give_empty_results(rec):
    rng = np.random.default_rng(0)
    blank = np.full((600, 800, 3), 225, np.uint8)
    shaded = (blank * np.linspace(1, 0.5, 800)[None, :, None] + rng.normal(0, 3, blank.shape)).clip(0, 255)
    for image in (blank, shaded.astype(np.uint8), np.zeros((1, 1, 3), np.uint8), np.full((5, 900), 255, np.uint8)):
        result = read_page(image, rec)
        assert result.digits == [] and result.lines == []


def test_bad_page_inputs(rec, tmp_path):
    with pytest.raises(EdgeDigitsError, match="uint8"):
        read_page(np.zeros((50, 50), np.float32), rec)
    with pytest.raises(EdgeDigitsError, match="shape"):
        read_page(np.zeros((0, 50, 3), np.uint8), rec)
    with pytest.raises(EdgeDigitsError, match="option"):
        read_page(np.zeros((50, 50), np.uint8), rec, threshold=3)
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("not an image\n")
    for name, fragment in (("missing.png", "no such file"), ("empty.png", "empty"),
                           ("text.png", "not an image"), (".", "folder")):
        with pytest.raises(EdgeDigitsError, match=fragment):
            load_image(tmp_path / name)


def test_50_megapixel_photo_is_downscaled_early(model_path, test_digits, tmp_path):
    """A 50 MP photo: read in a few seconds, boxes in its own pixels, and little memory on top of it."""
    page, lines, cells = make_page(*test_digits, rows=2, per_row=6, scale=2.0, seed=7)
    np.save(tmp_path / "page.npy", page)
    code = f"""
import json, resource, numpy as np, cv2
from edgedigits.runtime import Recognizer, read_page
page = np.load({str(tmp_path / 'page.npy')!r})
f = np.sqrt(50e6 / page.size)
big = cv2.cvtColor(cv2.resize(page, None, fx=f, fy=f, interpolation=cv2.INTER_LINEAR), cv2.COLOR_GRAY2BGR)
rec = Recognizer({str(model_path)!r})
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
r = read_page(big, rec)
extra = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
print(json.dumps({{"f": f, "pixels": big.shape[0] * big.shape[1], "lines": r.lines, "extra_mb": extra,
                  "centres": [[x + w / 2, y + h / 2] for x, y, w, h in (d.box for d in r.digits)]}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert info["pixels"] >= 49e6 and len(info["lines"]) == len(lines)
    assert edit_distance("".join(info["lines"]), "".join(lines)) <= 1
    assert info["extra_mb"] < 120, info["extra_mb"]           # the photo itself is 150 MB
    for (cx, cy), (x0, y0, x1, y1) in zip(info["centres"], cells):
        f = info["f"]
        assert x0 * f - 10 <= cx <= x1 * f + 10 and y0 * f - 10 <= cy <= y1 * f + 10


def test_annotate_draws_on_a_copy(rec, test_digits):
    page, _, _ = make_page(*test_digits, rows=1, per_row=4, scale=2.0, seed=9)
    result = read_page(page, rec)
    out = annotate(page, result)
    assert out.shape == page.shape + (3,) and out.dtype == np.uint8
    assert (out != cv2.cvtColor(page, cv2.COLOR_GRAY2BGR)).any()
    assert result.as_dict()["digits"][0].keys() >= {"box", "label", "probability"}


# --- corrupt or wrong models ---------------------------------------------------------------------

def tiny_onnx(path, in_shape, out_features):
    """A valid ONNX model that is not a digit classifier: Flatten -> Gemm to out_features."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    n_in = int(np.prod(in_shape[1:]))
    w = numpy_helper.from_array(np.zeros((n_in, out_features), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("Gemm", ["f", "w"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [in_shape[0], out_features])], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


def test_corrupt_and_wrong_models_give_one_line_errors(tmp_path, onnx_path):
    (tmp_path / "garbage.tflite").write_bytes(b"\x00garbage" * 100)
    (tmp_path / "garbage.onnx").write_bytes(b"\x08garbage" * 100)
    (tmp_path / "half.onnx").write_bytes(onnx_path.read_bytes()[:5000])
    (tmp_path / "model.pt").write_bytes(b"pickle")
    cases = [("missing.onnx", "no such model"), ("garbage.tflite", "cannot load"),
             ("garbage.onnx", "cannot load"), ("half.onnx", "cannot load"), ("model.pt", "not a model file"),
             (tiny_onnx(tmp_path / "rgb.onnx", [1, 3, 32, 32], 10).name, "not a 28x28 digit"),
             (tiny_onnx(tmp_path / "wide.onnx", [1, 1, 28, 28], 784).name, "one score per label")]
    for name, fragment in cases:
        with pytest.raises(EdgeDigitsError, match=fragment) as e:
            Recognizer(tmp_path / name)
        assert "\n" not in str(e.value)
    with pytest.raises(EdgeDigitsError, match="cannot run an .onnx"):
        Recognizer(onnx_path, backend="litert")
    with pytest.raises(EdgeDigitsError, match="threads"):
        Recognizer(onnx_path, threads=0)


# --- command line --------------------------------------------------------------------------------

def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "edgedigits.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_recognize_cli_processes_a_batch_with_bad_files(tmp_path, model_path, test_digits):
    page, lines, _ = make_page(*test_digits, rows=2, per_row=5, scale=2.0, seed=11)
    cv2.imwrite(str(tmp_path / "page.png"), page)
    cv2.imwrite(str(tmp_path / "blank.jpg"), np.full((300, 400, 3), 230, np.uint8))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    out = run_cli("recognize", tmp_path, tmp_path / "missing.jpg", "--model", model_path,
                  "--json", "--annotate", tmp_path / "ann")
    assert out.returncode == 1                                  # some files really failed
    errors = out.stderr.strip().splitlines()
    assert len(errors) == 2 and "Traceback" not in out.stderr
    assert "broken.png" in errors[0] and "missing.jpg" in errors[1]
    rows = {json.loads(s)["file"].rsplit("/", 1)[-1]: json.loads(s) for s in out.stdout.splitlines()}
    assert rows["page.png"]["lines"] == lines and rows["blank.jpg"]["lines"] == []
    assert {"box", "label", "probability"} <= set(rows["page.png"]["digits"][0])
    assert sorted(p.name for p in (tmp_path / "ann").iterdir()) == ["blank.png", "page.png"]

    text = run_cli("recognize", tmp_path / "page.png", tmp_path / "blank.jpg", "--model", model_path)
    assert text.returncode == 0 and text.stdout.split() == [
        str(tmp_path / "page.png"), *lines, str(tmp_path / "blank.jpg"), "(no", "digits)"]


def test_recognize_cli_refuses_a_bad_model_in_one_line(tmp_path, test_digits):
    (tmp_path / "bad.tflite").write_bytes(b"nope")
    cv2.imwrite(str(tmp_path / "page.png"), make_page(*test_digits, rows=1, per_row=3, scale=2.0)[0])
    out = run_cli("recognize", tmp_path / "page.png", "--model", tmp_path / "bad.tflite")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "bad.tflite" in out.stderr


INT8_IO_MODEL = """
import sys, numpy as np
import tensorflow as tf
from edgedigits.train.data import load_mnist
x, y, xt, _ = load_mnist(sys.argv[2], allow_download=False)
x = x[:10000].astype(np.float32) / 255
tf.keras.utils.set_random_seed(0)
model = tf.keras.Sequential([tf.keras.Input((28, 28)), tf.keras.layers.Flatten(),
                             tf.keras.layers.Dense(64, activation="relu"), tf.keras.layers.Dense(10)])
model.compile("adam", tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
model.fit(x, y[:10000], epochs=2, batch_size=128, verbose=0)
np.save(sys.argv[1] + ".ref.npy", model.predict(xt[:500].astype(np.float32) / 255, verbose=0).argmax(1))
convert = tf.lite.TFLiteConverter.from_keras_model(model)
convert.optimizations = [tf.lite.Optimize.DEFAULT]
convert.representative_dataset = lambda: ([x[i:i + 1]] for i in range(200))
convert.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
convert.inference_input_type, convert.inference_output_type = tf.uint8, tf.int8
open(sys.argv[1], "wb").write(convert.convert())
"""


@pytest.mark.slow
def test_integer_io_tflite_is_quantized_with_its_own_scale(tmp_path, mnist_dir, mnist):
    """A model with uint8 input and int8 output (what TFLite's full-integer converter makes for
    microcontrollers), [N,28,28] and without metadata: read like the float model it came from."""
    pytest.importorskip("tensorflow")
    path = tmp_path / "u8.tflite"
    out = subprocess.run([sys.executable, "-c", INT8_IO_MODEL, str(path), str(mnist_dir)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    r = Recognizer(path)
    assert r._model.dtype == np.uint8 and r.layout == "NHW" and r.metadata == {}
    probs = r.predict(mnist[2][:500].astype(np.float32) / 255)
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-3)
    assert (probs.argmax(1) == np.load(str(path) + ".ref.npy")).mean() >= 0.95
    assert (probs.argmax(1) == mnist[3][:500]).mean() >= 0.8
