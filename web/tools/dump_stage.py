"""Dump the inputs and outputs of the Python runtime's rules.py and digits.py stages, as called by
read_page on real photos, for `web/tools/stage.mjs` to replay through the JS port and diff.

    .venv/bin/python web/tools/dump_stage.py OUT_DIR PHOTO [PHOTO ...]

Per photo and call: OUT_DIR/<photo>/<stage>_<n>.json (numbers, blobs, rules, reads) beside the
images it needs as .npy (masks uint8, labels int32, the flattened page uint8, crops float32).
The reference reader is the parity one: the int8 ONNX model on onnxruntime.
"""

import json
import sys
import time
from pathlib import Path

import numpy as np

from edgedigits.errors import EdgeDigitsError
from edgedigits.runtime import images, ink, page
from edgedigits.runtime.recognizer import Recognizer

ROOT = Path(__file__).resolve().parents[2]


def blob_dict(b):
    return {"ids": [int(i) for i in b.ids], "x0": b.x0, "y0": b.y0, "x1": b.x1, "y1": b.y1,
            "area": int(b.area), "touches_edge": bool(b.touches_edge), "clutter": float(b.clutter),
            "cell": jsonable(b.cell)}


def rule_dict(r):
    return {"at": float(r.at), "start": int(r.start), "end": int(r.end), "slope": float(r.slope),
            "width": float(r.width)}


def rules_dict(rules):
    return {"horizontal": [rule_dict(r) for r in rules.horizontal],
            "vertical": [rule_dict(r) for r in rules.vertical],
            "boxes": [list(map(int, b)) for b in rules.boxes]}


def read_dict(r):
    return {"x0": int(r.x0), "y0": int(r.y0), "x1": int(r.x1), "y1": int(r.y1),
            "probs": [float(p) for p in r.probs], "line": int(r.line), "odd": bool(r.odd),
            "cell": jsonable(r.cell), "darkness": float(r.darkness)}


def jsonable(x):
    if isinstance(x, (tuple, list)):
        return [jsonable(v) for v in x]
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    return x


class Dumper:
    def __init__(self, folder: Path):
        self.folder = folder
        self.counts = {}
        self.ms = 0.0

    def name(self, stage):
        n = self.counts.get(stage, 0)
        self.counts[stage] = n + 1
        return f"{stage}_{n}"

    def save(self, name, data, **arrays):
        for key, a in arrays.items():
            np.save(self.folder / f"{name}.{key}.npy", np.ascontiguousarray(a))
        data["ms"] = self.ms
        (self.folder / f"{name}.json").write_text(json.dumps(data))


ORIGINAL = (ink.find_rules, ink.find_boxes, page.writing_angle, page.find_grid, page.group_lines,
            page.classify_blobs, page.finish_lines)
SHEET = (page.quadrilateral, page.rectangle_like, page.order_corners, page.rotation)


def wrap(dumper):
    """Patch the stage functions where read_page and find_blobs call them."""
    find_rules, find_boxes, writing_angle, find_grid, group_lines, classify_blobs, finish_lines = ORIGINAL

    def rules_(mask, height):
        t0 = time.perf_counter()
        clean, rules = find_rules(mask, height)
        dumper.ms = (time.perf_counter() - t0) * 1000
        name = dumper.name("find_rules")
        arrays = {"mask": mask, "clean": clean}
        if rules.mask is not None:
            arrays["lines"] = rules.mask
        dumper.save(name, {"height": float(height), "rules": rules_dict(rules)}, **arrays)
        return clean, rules

    def boxes_(mask, height):
        t0 = time.perf_counter()
        out, boxes = find_boxes(mask, height)
        dumper.ms = (time.perf_counter() - t0) * 1000
        dumper.save(dumper.name("find_boxes"), {"height": float(height), "boxes": [list(b) for b in boxes]},
                    mask=mask, out=out)
        return out, boxes

    def angle_(blobs, mask, height, flattened=False):
        t0 = time.perf_counter()
        skew, doubtful = writing_angle(blobs, mask, height, flattened)
        dumper.ms = (time.perf_counter() - t0) * 1000
        dumper.save(dumper.name("writing_angle"), {"blobs": [blob_dict(b) for b in blobs], "height": float(height),
                                                   "flattened": bool(flattened), "skew": skew, "doubtful": doubtful},
                    mask=mask)
        return skew, doubtful

    def grid_(rules, shape, *a):
        t0 = time.perf_counter()
        quad = find_grid(rules, shape, *a)
        dumper.ms = (time.perf_counter() - t0) * 1000
        dumper.save(dumper.name("find_grid"), {"rules": rules_dict(rules), "shape": list(shape[:2]),
                                               "quad": None if quad is None else quad.tolist()})
        return quad

    state = {}

    def group_(blobs, geom, line_gap, rules=None):
        before = [blob_dict(b) for b in blobs]
        t0 = time.perf_counter()
        lines = group_lines(blobs, geom, line_gap, rules)
        dumper.ms = (time.perf_counter() - t0) * 1000
        index = {id(b): k for k, b in enumerate(blobs)}
        out = [{"blobs": [index[id(b)] for b in ln.blobs], "top": ln.top, "height": ln.height,
                "band": jsonable(ln.band)} for ln in lines]
        name = dumper.name("group_lines")
        dumper.save(name, {"blobs": before, "height": float(geom.height), "stroke": float(geom.stroke),
                           "shape": list(geom.shape), "line_gap": float(line_gap),
                           "rules": rules_dict(rules) if rules is not None else None,
                           "lines": out, "cells": [jsonable(b.cell) for b in blobs]})
        state["lines"] = lines
        return lines

    def classify_(lines, ink_, geom, recognizer, opt, *budget):
        t0 = time.perf_counter()
        reads = classify_blobs(lines, ink_, geom, recognizer, opt, *budget)
        dumper.ms = (time.perf_counter() - t0) * 1000
        name = dumper.name("classify_blobs")
        data = {"lines": [{"blobs": [blob_dict(b) for b in ln.blobs], "top": ln.top, "height": ln.height,
                           "band": jsonable(ln.band)} for ln in lines],
                "paper": float(ink_.paper), "darkest": float(ink_.darkest), "height": float(geom.height),
                "bridge": int(ink_.bridge),
                "split": opt.split, "match_stroke": opt.match_stroke,
                "reads": [read_dict(r) for r in reads]}
        crops = np.stack([r.crop28 for r in reads]) if reads else np.zeros((0, 28, 28), np.float32)
        ruled = ink_.ruled if ink_.ruled is not None else np.zeros((0, 0), np.uint8)
        dumper.save(name, data, labels=ink_.labels.astype(np.int32), flat=ink_.flat, crops=crops,
                    ruled=(ruled > 0).astype(np.uint8))
        return reads

    def finish_(reads, labels, opt, none_threshold=0.5):
        before = [read_dict(r) for r in reads]
        index = {id(r): k for k, r in enumerate(reads)}
        t0 = time.perf_counter()
        ordered, texts, rejected = finish_lines(reads, labels, opt, none_threshold)
        dumper.ms = (time.perf_counter() - t0) * 1000
        dumper.save(dumper.name("finish_lines"), {
            "reads": before, "labels": list(labels), "none_threshold": none_threshold,
            "keep_all": opt.keep_all, "reject": opt.reject,
            "ordered": [index[id(r)] for r in ordered], "lines_out": [r.line for r in ordered],
            "cells_out": [jsonable(r.cell) for r in ordered], "texts": texts,
            "rejected": [[index[id(r)], kind] for r, kind in rejected]})
        return ordered, texts, rejected

    quadrilateral, rectangle_like, order_corners, rotation = SHEET

    def quad_(contour):
        quad = quadrilateral(contour)
        data = {"contour": contour.reshape(-1, 2).tolist(), "quad": None if quad is None else quad.tolist()}
        if quad is not None:
            data["rectangle_like"] = rectangle_like(quad)
            data["order_corners"] = order_corners(quad).tolist()
        dumper.ms = 0.0
        dumper.save(dumper.name("quadrilateral"), data)
        return quad

    def rotation_(shape, degrees):
        m, size = rotation(shape, degrees)
        dumper.ms = 0.0
        dumper.save(dumper.name("rotation"), {"shape": list(shape[:2]), "degrees": degrees, "m": m.tolist(),
                                              "size": list(size)})
        return m, size

    page.quadrilateral, page.rotation = quad_, rotation_
    ink.find_rules, ink.find_boxes = rules_, boxes_
    page.writing_angle, page.find_grid = angle_, grid_
    page.group_lines, page.classify_blobs, page.finish_lines = group_, classify_, finish_


def main(out: Path, photos: list) -> None:
    recognizer = Recognizer(str(ROOT / "models" / "cnn" / "model_int8.onnx"), backend="onnxruntime")
    for photo in photos:
        folder = out / Path(photo).stem
        folder.mkdir(parents=True, exist_ok=True)
        wrap(Dumper(folder))
        result = page.read_page(images.load_image(photo), recognizer)
        (folder / "result.json").write_text(json.dumps(result.as_dict()))
        print(Path(photo).name, result.lines)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: dump_stage.py OUT_DIR PHOTO [PHOTO ...]")
    try:
        main(Path(sys.argv[1]), sys.argv[2:])
    except (EdgeDigitsError, OSError) as e:
        sys.exit(f"dump_stage.py: error: {e}")
