"""Parity of the web reader (web/src/runtime/, run in node by web/tools/read.mjs) with the Python
runtime, photo by photo: the decoded pixels and Python's reading go to OUT_DIR, the JS port reads
the same pixels, and the two readings are compared.

    .venv/bin/python web/tools/reference.py OUT_DIR PHOTO_OR_FOLDER [...]

Per photo: OUT_DIR/<name>.npy (the decoded BGR pixels, as load_image gives them), <name>.py.json
(Python's PageResult.as_dict() plus each digit's crop28 as a list), <name>.js.json (read.mjs's
output). Prints one line per photo (lines equal?, digits equal, largest crop difference, where
they diverge) and the totals. The reference is the parity one: read_page with the int8 ONNX model
on onnxruntime (the file the browser runs). Exit status 1 if a photo's lines differ.
"""

import base64
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from edgedigits.runtime.images import load_image
from edgedigits.runtime.page import read_page
from edgedigits.runtime.recognizer import Recognizer

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "cnn" / "model_int8.onnx"
PHOTOS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


def photos(args):
    for a in map(Path, args):
        if a.is_dir():
            yield from sorted(p for p in a.iterdir() if p.suffix.lower() in PHOTOS)
        elif a.exists():
            yield a
        else:
            raise SystemExit(f"reference.py: error: {a} does not exist")


def python_reading(image, recognizer):
    result = read_page(image, recognizer)
    out = result.as_dict()
    for entry, d in zip(out["digits"], result.digits):
        entry["input28"] = d.crop28.astype(np.float32).ravel().tolist()
    return out


def js_readings(files, out_dir):
    """{npy path: JS result} from one node run over all the photos."""
    run = subprocess.run(["node", str(ROOT / "web" / "tools" / "read.mjs"), "--crops", "--model", str(MODEL),
                          *map(str, files)], capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"reference.py: error: read.mjs failed: {run.stderr.strip()[-2000:]}")
    found = {}
    for line in run.stdout.splitlines():
        entry = json.loads(line)
        for d in entry["result"]["digits"]:
            d["input28"] = np.frombuffer(base64.b64decode(d["input28"]), np.float32).tolist()
        found[entry["image"]] = entry
    return found


def key(d):
    return (tuple(d["box"]), d["label"])


def compare(py, js):
    """(lines equal, digits of Python's read alike by JS (same box and label), largest crop
    difference over those, a note on where they diverge)."""
    same_lines = py["lines"] == js["lines"]
    js_by_box = {key(d): d for d in js["digits"]}
    equal, worst = 0, 0.0
    for d in py["digits"]:
        other = js_by_box.get(key(d))
        if other is not None:
            equal += 1
            worst = max(worst, float(np.abs(np.float32(d["input28"]) - np.float32(other["input28"])).max()))
    notes = []
    if py.get("noise", False) != js.get("noise", False):
        notes.append(f"noise py={py.get('noise', False)} js={js.get('noise', False)}")
    if py["turn"] != js["turn"]:
        notes.append(f"turn py={py['turn']} js={js['turn']}")
    if len(py["digits"]) != len(js["digits"]):
        notes.append(f"digits py={len(py['digits'])} js={len(js['digits'])}")
    pr = sorted((tuple(m["box"]), m["kind"]) for m in py["rejected"])
    jr = sorted((tuple(m["box"]), m["kind"]) for m in js["rejected"])
    if pr != jr:
        notes.append(f"rejected py={len(pr)} js={len(jr)} ({len(set(pr) ^ set(jr))} differ)")
    return same_lines, equal, worst, "; ".join(notes)


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    out_dir = Path(argv[0])
    out_dir.mkdir(parents=True, exist_ok=True)
    files = list(photos(argv[1:]))
    if not files:
        raise SystemExit("reference.py: error: no photos given")
    recognizer = Recognizer(str(MODEL), backend="onnxruntime")
    npys, py = [], {}
    for photo in files:
        name = f"{photo.parent.name}_{photo.stem}"
        image = load_image(photo)
        npy = out_dir / f"{name}.npy"
        np.save(npy, np.ascontiguousarray(image))
        py[str(npy)] = python_reading(image, recognizer)
        (out_dir / f"{name}.py.json").write_text(json.dumps(py[str(npy)]))
        npys.append(npy)
    js = js_readings(npys, out_dir)
    lines_ok = digits_total = digits_equal = 0
    worst_all = 0.0
    for npy in npys:
        j = js[str(npy)]
        (out_dir / f"{npy.stem}.js.json").write_text(json.dumps(j))
        same, equal, worst, note = compare(py[str(npy)], j["result"])
        lines_ok += same
        digits_total += len(py[str(npy)]["digits"])
        digits_equal += equal
        worst_all = max(worst_all, worst)
        print(f"{npy.stem:32s} lines {'equal' if same else 'DIFFER'}  digits {equal}/{len(py[str(npy)]['digits'])}"
              f"  crop max diff {worst * 255:.2f}/255  js {j['ms']:.0f} ms  {note}")
    print(f"total: lines equal on {lines_ok}/{len(npys)} photos, digits {digits_equal}/{digits_total}"
          f" ({100 * digits_equal / max(1, digits_total):.1f}%), largest crop difference {worst_all * 255:.2f}/255")
    return 0 if lines_ok == len(npys) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
