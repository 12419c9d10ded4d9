"""One file of tuning values for both page readers: the Python runtime and the web app's JS port.

A value read by one side only would let the two readers drift apart silently: every value in
`runtime/tuning.json` must be read by its Python module and by the JS module of the same name."""

import json
import re
from pathlib import Path

from edgedigits.runtime.tuning import TUNING

ROOT = Path(__file__).resolve().parents[1]


def leaf_keys(section: dict) -> list:
    keys = []
    for key, value in section.items():
        keys += [key] if not isinstance(value, dict) or key == "NOISE" else leaf_keys(value)
    return keys


def read_by(source: str, key: str) -> bool:
    return re.search(rf"""\[\s*["']{key}["']\s*\]|\.{key}\b""", source) is not None


def test_the_file_is_what_python_reads():
    assert TUNING == json.loads((ROOT / "runtime" / "tuning.json").read_text(encoding="utf-8"))
    from edgedigits.runtime import digits, ink, page
    assert page.Options().max_side == TUNING["page"]["options"]["max_side"]
    assert ink.WINDOW == TUNING["ink"]["WINDOW"] and digits.CLEAN_PAGE == TUNING["digits"]["CLEAN_PAGE"]


def test_every_value_is_read_by_python_and_by_javascript():
    for section, values in TUNING.items():
        if section == "about":
            continue
        keys = leaf_keys(values) if section != "page" else ["options", "NOISE"]
        python = (ROOT / "runtime" / f"{section}.py").read_text(encoding="utf-8")
        js_file = ROOT / "web" / "src" / "runtime" / f"{section}.js"
        assert js_file.exists(), f"{js_file.relative_to(ROOT)} is missing: the JS port of runtime/{section}.py"
        js = js_file.read_text(encoding="utf-8")
        for key in keys:
            assert read_by(python, key), f"runtime/{section}.py does not read tuning {section}.{key}"
            assert read_by(js, key), f"web/src/runtime/{section}.js does not read tuning {section}.{key}"
