"""Reading an archive (runtime/archive.py): input order kept on several workers, a resumable
JSONL that a kill never corrupts, bad files that do not stop the run, and the Ray Data path."""

import json
import os
import runpy
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgedigits.cli import main
from edgedigits.runtime import archive

DOC = Path(__file__).resolve().parents[1] / "docs" / "archive.md"


def records(path: Path) -> list:
    return [json.loads(line) for line in path.read_text().splitlines()]


def same(rs: list) -> list:
    """Records without the timings (the only field that differs from run to run)."""
    return [{k: v for k, v in r.items() if k != "timings_ms"} for r in rs]


def link_photos(folder: Path, sources: list, copies: int = 1) -> Path:
    """Links to the read-only photos in a temporary folder (nothing is copied)."""
    folder.mkdir(parents=True, exist_ok=True)
    for c in range(copies):
        for src in sources:
            (folder / f"{c}-{src.name}").symlink_to(src)
    return folder


@pytest.fixture(scope="module")
def photos(paper_dir, tmp_path_factory) -> Path:
    """8 of the paper photos (pages and a camera photo), in a folder of their own."""
    names = sorted(p for p in paper_dir.iterdir() if p.suffix in (".png", ".jpg"))
    chosen = names[:6] + [n for n in names if "photo" in n.name][:1] + [n for n in names if n.suffix == ".jpg"][:1]
    return link_photos(tmp_path_factory.mktemp("photos"), chosen)


@pytest.fixture(scope="module")
def reference(photos, tmp_path_factory) -> list:
    """What today's in-process path (--workers 1) writes."""
    out = tmp_path_factory.mktemp("reference") / "w1.jsonl"
    assert main(["recognize", str(photos), "--workers", "1", "--jsonl", str(out)]) == 0
    rs = records(out)
    assert [r["file"] for r in rs] == [str(p) for p in sorted(photos.iterdir())]
    assert all("error" not in r and r["lines"] for r in rs)
    return rs


def test_two_workers_keep_input_order(photos, reference, tmp_path, capsys):
    out = tmp_path / "w2.jsonl"
    assert main(["recognize", str(photos), "--workers", "2", "--jsonl", str(out), "--json"]) == 0
    assert same(records(out)) == same(reference)
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert same(printed) == same(reference)                   # stdout too, in input order


def test_resume_after_a_partial_last_line(photos, reference, tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    whole = "".join(json.dumps(r) + "\n" for r in reference[:3])
    out.write_text(whole + json.dumps(reference[3])[:40])          # killed in the middle of line 4
    assert main(["recognize", str(photos), "--workers", "2", "--jsonl", str(out), "--resume"]) == 0
    assert out.read_text().startswith(whole)                       # what was saved is kept as it was
    assert same(records(out)) == same(reference)                   # no duplicate, nothing lost
    assert "3 already there" in capsys.readouterr().err


def test_killed_run_resumes(paper_dir, reference, tmp_path):
    sources = [Path(r["file"]).resolve() for r in reference]
    folder = link_photos(tmp_path / "many", sources, copies=4)     # 32 files
    out = tmp_path / "out.jsonl"
    cmd = [sys.executable, "-m", "edgedigits.cli", "recognize", str(folder), "--workers", "2",
           "--jsonl", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if out.exists() and out.read_bytes().count(b"\n") >= 3:
                break
            time.sleep(0.01)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)                    # the run and its workers, at once
        proc.wait(timeout=30)
    assert main(["recognize", str(folder), "--workers", "2", "--jsonl", str(out), "--resume"]) == 0
    rs = records(out)
    assert [r["file"] for r in rs] == [str(p) for p in sorted(folder.iterdir())]   # each once, in order
    by_name = {Path(r["file"]).name.split("-", 1)[1]: r["lines"] for r in reference}
    assert all(r["lines"] == by_name[Path(r["file"]).name.split("-", 1)[1]] for r in rs)


def test_bad_files_do_not_stop_the_run(paper_dir, reference, tmp_path, capsys):
    sources = [Path(r["file"]).resolve() for r in reference[:3]]
    folder = link_photos(tmp_path / "mixed", sources)
    (folder / "0-b-garbage.png").write_bytes(b"not an image at all")   # sorts into the middle
    (folder / "0-c-empty.jpg").write_bytes(b"")
    out = tmp_path / "out.jsonl"
    assert main(["recognize", str(folder), "--workers", "2", "--jsonl", str(out)]) == 1
    rs = records(out)
    assert [r["file"] for r in rs] == [str(p) for p in sorted(folder.iterdir())]
    bad = {Path(r["file"]).name: r["error"] for r in rs if "error" in r}
    assert set(bad) == {"0-b-garbage.png", "0-c-empty.jpg"}
    assert "not an image" in bad["0-b-garbage.png"] and "empty file" in bad["0-c-empty.jpg"]
    assert all(r["lines"] for r in rs if "error" not in r)
    err = capsys.readouterr().err
    assert err.count("edgedigits recognize: error:") == 2 and "Traceback" not in err
    # resumed, the failed files are not read again, and the run still says some failed
    assert main(["recognize", str(folder), "--workers", "1", "--jsonl", str(out), "--resume"]) == 1
    assert len(records(out)) == len(rs)


def test_existing_output_is_refused_without_resume(photos, tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    out.write_text('{"file": "mine"}\n')
    assert main(["recognize", str(photos), "--jsonl", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--resume" in err and "--force" in err
    assert out.read_text() == '{"file": "mine"}\n'                # untouched
    out.write_text("something else\n")                            # not ours: resume refuses too
    assert main(["recognize", str(photos), "--jsonl", str(out), "--resume"]) == 2
    assert "not resuming" in capsys.readouterr().err and out.read_text() == "something else\n"
    assert main(["recognize", str(photos), "--workers", "1", "--jsonl", str(out), "--force"]) == 0
    assert len(records(out)) == len(list(photos.iterdir()))


def test_progress_line():
    import io

    stream = io.StringIO()
    progress = archive.Progress(4, enabled=True, stream=stream)
    progress.every = 0.0
    for _ in range(4):
        progress.update()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 4 and lines[0].startswith("1/4 pages  25%") and "ETA" in lines[0]
    assert lines[-1].startswith("4/4 pages  100%") and "pages/s  in 0:00" in lines[-1]
    quiet = io.StringIO()
    archive.Progress(4, enabled=False, stream=quiet).update()
    assert quiet.getvalue() == ""


def _fail_on_boom(item):
    if item == "boom":
        os._exit(3)                              # what a segfault in native code looks like to the pool
    return item.upper()


def test_a_dying_worker_costs_one_item():
    items = ["a", "b", "boom", "c", "d", "e"]
    got = list(archive.ordered_map(_fail_on_boom, items, 2, chunksize=2,
                                   on_crash=lambda item, why: f"crashed: {item}"))
    assert got == ["A", "B", "crashed: boom", "C", "D", "E"]


def test_ray_not_installed_says_how(photos, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)                  # `import ray` fails as if absent
    assert main(["recognize", str(photos), "--ray", "local"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install 'edgedigits[scale]'" in err


def doc_script() -> str:
    text = DOC.read_text()
    start, end = "<!-- ray-script:start -->\n", "<!-- ray-script:end -->"
    assert start in text and end in text, "docs/archive.md lacks the ray-script markers"
    return text.split(start, 1)[1].split(end, 1)[0].strip().removeprefix("```python").removesuffix("```")


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'edgedigits[scale]')")
    pytest.importorskip("ray.data", reason="Ray Data is not installed (pip install 'edgedigits[scale]')")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")     # Ray Data's own, from its DataContext
def test_ray_on_a_local_instance(local_ray, photos, reference, tmp_path, monkeypatch):
    out = tmp_path / "ray.jsonl"
    assert main(["recognize", str(photos), "--ray", "local", "--jsonl", str(out)]) == 0
    assert same(records(out)) == same(reference)
    assert local_ray.is_initialized()                              # joined, not started: left running

    # the docs' cluster script, as written there
    script = tmp_path / "read_archive.py"
    script.write_text(doc_script())
    parquet = tmp_path / "parquet"
    monkeypatch.setattr(sys, "argv", [str(script), "local", str(photos), str(parquet)])
    runpy.run_path(str(script), run_name="__main__")
    import pyarrow.dataset as pads

    table = pads.dataset(str(parquet), format="parquet").to_table()
    rows = sorted(table.to_pylist(), key=lambda r: r["file"])
    assert [archive.row_to_record(r) for r in rows] == [
        {**r, "timings_ms": archive.row_to_record(row)["timings_ms"]} for r, row in zip(reference, rows)]
