"""Compare the arm64 probe with the x86 one, print the report and write it into docs/raspberry-pi.md
(between the `pi-check report` markers). Exits 1 when anything differs that must not.

    python pi/report.py --x86 DIR --arm DIR --wheel dist/edgedigits-X.whl --doc docs/raspberry-pi.md
"""

import argparse
import datetime
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

BEGIN, END = "<!-- pi-check report: begin (written by make pi-check) -->", "<!-- pi-check report: end -->"


def load(folder: Path) -> tuple:
    result = json.loads((folder / "probe.json").read_text())
    if (folder / "primitives.npz").exists():
        result["primitives"] = dict(np.load(folder / "primitives.npz"))
    return result, dict(np.load(folder / "logits.npz"))


def commit() -> str:
    def git(*args):
        return subprocess.run(["git", *args], capture_output=True, text=True).stdout.strip()

    return git("rev-parse", "--short=10", "HEAD") + (" (with uncommitted changes)" if git("status", "--porcelain",
                                                                                          "--untracked-files=no") else "")


def primitives_line(x86: dict, arm: dict) -> str:
    """How many pixels of OpenCV's fractional INTER_AREA resize differ between the machines (not a
    failure by itself: it explains differing readings)."""
    parts = []
    for name in sorted(set(x86) & set(arm)):
        a, b = x86[name].astype(np.float64), arm[name].astype(np.float64)
        differ = int((a != b).sum()) if a.shape == b.shape else a.size
        parts.append(f"{name.removeprefix('resize_area_')}: {differ} of {a.size} pixels differ"
                     + (f" (at most {np.abs(a - b).max():.1e})" if differ and a.shape == b.shape else ""))
    return ("- OpenCV `resize(INTER_AREA)` at 0.71x of the first paper photo, arm64 against x86: " + "; ".join(parts)
            if parts else "")


def compare(x86: dict, arm: dict, x86_logits: dict, arm_logits: dict) -> tuple:
    """(lines of the report, list of failures)."""
    lines, failures = [], []
    lines += ["| model file / backend | digits | same argmax as x86 | max logit difference | arm64 s (emulated) |",
              "|---|---:|---:|---:|---:|"]
    for pair in sorted(x86_logits):
        if pair not in arm_logits:
            lines.append(f"| {pair} | - | not available on aarch64 | - | - |")
            continue
        a, b = x86_logits[pair], arm_logits[pair]
        same = int((a.argmax(1) == b.argmax(1)).sum())
        diff = float(np.abs(a - b).max())
        lines.append(f"| {pair} | {len(a)} | {same}/{len(a)} | {diff:.2e} | {arm['parity_seconds'][pair]} |")
        if same != len(a):
            failures.append(f"{pair}: argmax differs on {len(a) - same} digits")
    for pair in sorted(set(arm_logits) - set(x86_logits)):
        lines.append(f"| {pair} | {len(arm_logits[pair])} | (no x86 run) | - | {arm['parity_seconds'][pair]} |")
    if not arm_logits:
        failures.append("no model ran on aarch64")
    lines.append("")
    for name in ("paper", "paper-hard"):
        a, b = x86["jobs"][name], arm["jobs"][name]
        if b["rc"] != 0 or a["rc"] != 0:
            failures.append(f"eval-paper {name}: exit {a['rc']} on x86, {b['rc']} on arm64 ({b['stderr']})")
            continue
        differ = [f for f in a["read"] if a["read"][f] != b["read"].get(f)]
        lines.append(f"- `eval-paper {name}` ({len(a['read'])} photos, {b['model']}): "
                     f"{'identical readings' if not differ else 'DIFFERENT readings: ' + ', '.join(differ)}; "
                     f"digit accuracy {b['digit_accuracy']:.1%} on arm64, {a['digit_accuracy']:.1%} on x86; "
                     f"{b['ms_per_image']} ms a photo emulated, {a['ms_per_image']} ms on x86")
        if differ:
            failures.append(f"eval-paper {name}: readings differ on {', '.join(differ)}")
    a, b = x86["jobs"]["camera"], arm["jobs"]["camera"]
    same = a["readings"] == b["readings"]
    lines.append(f"- `camera --source paper.avi --view none` (a video of 12 paper photos, 3 frames each): exit "
                 f"{b['rc']}, {len(b['readings'])} readings printed, "
                 f"{'the same as on x86' if same else 'DIFFERENT from x86'}; {' '.join(b['summary'])}")
    if b["rc"] != 0 or not b["readings"] or not same:
        failures.append(f"camera: exit {b['rc']}, {len(b['readings'])} readings, same as x86: {same} {b['stderr']}")
    for machine, probe in (("x86", x86), ("arm64", arm)):
        for name, job in probe["jobs"].items():
            if job["rc"] != 0 and name not in ("paper", "paper-hard"):
                failures.append(f"{name}: exit {job['rc']} on {machine} ({' '.join(job['stderr'])})")
    lines.append(primitives_line(x86.get("primitives", {}), arm.get("primitives", {})))
    heavy = arm["jobs"]["imports"]["heavy"]
    lines.append(f"- import check (`edgedigits recognize` in-process, then `sys.modules`): torch/tensorflow/keras/jax "
                 f"imported: {heavy}")
    if heavy != "none":
        failures.append(f"the runtime imported {heavy}")
    return lines, failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--x86", type=Path, required=True)
    parser.add_argument("--arm", type=Path, required=True)
    parser.add_argument("--wheel", type=Path, required=True)
    parser.add_argument("--doc", type=Path, required=True)
    parser.add_argument("--root", default="")
    parser.add_argument("--timings", default="")
    args = parser.parse_args()
    (x86, x86_logits), (arm, arm_logits) = load(args.x86), load(args.arm)
    lines, failures = compare(x86, arm, x86_logits, arm_logits)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    versions = ", ".join(f"{k} {v}" for k, v in arm["versions"].items())
    head = [f"Last run: {stamp}, commit {commit()}, wheel `{args.wheel.name}`.",
            f"Root: {args.root}, Python {arm['python']} (emulated by qemu-user). Installed from aarch64 wheels "
            f"with `pip install --no-index`: {versions}. x86 reference: Python {x86['python']}, "
            + ", ".join(f"{k} {v}" for k, v in x86["versions"].items()) + ".",
            f"Seconds: {args.timings.replace('=', ' ')}{' (root 0: reused from the cache)' if 'root=0 ' in args.timings else ''}." if args.timings else "",
            f"Result: **{'PASS' if not failures else 'FAIL'}**" + ("" if not failures else ": " + "; ".join(failures)),
            ""]
    report = "\n".join([*head, *lines])
    print(report)
    if args.doc.exists():
        text = args.doc.read_text()
        if BEGIN in text and END in text:
            before, rest = text.split(BEGIN, 1)
            text = before + BEGIN + "\n" + report + "\n" + END + rest.split(END, 1)[1]
            args.doc.write_text(text)
            print(f"pi-check: report written to {args.doc}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
