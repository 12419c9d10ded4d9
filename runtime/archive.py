"""Reading an archive: many photos on all cores, resumable, and on a Ray cluster.

    edgedigits recognize scans/ --jsonl out.jsonl             # every core, one JSON line per file
    edgedigits recognize scans/ --jsonl out.jsonl --resume    # after a kill: go on where it stopped
    edgedigits recognize scans/ --ray auto --parquet out/     # on a Ray cluster
    edgedigits bench-archive ../shared/data/paper             # pages/s on 1 vs 2 worker processes

From Python (records come in input order, one dict per file, as the JSONL lines):

    from edgedigits.runtime.archive import read_files
    for record in read_files(["scans/"], workers=4):
        print(record["file"], record.get("lines"), record.get("error"))

The pieces:
  read_file(path, recognizer)     one file -> one record; a bad file gives a record with "error"
  plan(paths) / read_jobs(jobs)   folders expanded as `recognize` does; records in input order,
                                  read in worker processes (one Recognizer each, OpenCV on 1 thread)
  ordered_map(fn, items, workers) the process pool under it: ordered, bounded, and a worker that
                                  dies (a crash in native code) costs one file, not the run
  JsonlWriter(path)               whole lines only, fsync'ed; recovers the file of a killed run
  Progress(total)                 a one-line meter on stderr (pages/s, ETA), no dependency
  ray_dataset(paths) / ray_records(ds)   the same records as a Ray Dataset (edgedigits[scale])
  make_pages / bench              `edgedigits bench-archive`
Only the standard library loads with this module: OpenCV and the interpreter load in the process
that reads, ray and pyarrow only in the ray_* functions.
"""

import itertools
import json
import multiprocessing
import os
import sys
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from edgedigits.errors import EdgeDigitsError

SCALE_HINT = "pip install 'edgedigits[scale]'"


def default_workers() -> int:
    """The cores this process may run on (its CPU affinity; os.cpu_count() where that is unknown)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:                       # macOS, Windows
        return os.cpu_count() or 1


# --- one file ------------------------------------------------------------------------------------

def error_message(e: BaseException, path) -> str:
    """One line for what went wrong with one file."""
    if isinstance(e, EdgeDigitsError):
        return str(e)
    if isinstance(e, OSError):
        return f"{e.filename or path}: {e.strerror or e}"
    return f"{path}: unexpected {type(e).__name__}: {(str(e).splitlines() or [''])[0]}"


def read_file(path, recognizer, page: bool = True, annotate_to=None, file: str | None = None) -> dict:
    """Read one image file; never raises for a bad file.

    The record: {"file", "lines", "digits", "turn", "rejected", "model", "timings_ms"} (as
    `recognize --json` prints it), or {"file", "model", "error"} if the file could not be read.
    `file` is the name the record carries (default: `path` as given).
    """
    from .evaluate import write_image
    from .page import annotate, load_image, read_page

    name = str(path) if file is None else file
    try:
        image = load_image(path)
        result = read_page(image, recognizer, page=page)
        if annotate_to:
            write_image(Path(annotate_to), annotate(image, result))
    except Exception as e:                       # one bad file never stops the batch
        return {"file": name, "model": recognizer.model_id, "error": error_message(e, path)}
    return {"file": name, **result.as_dict(), "model": recognizer.model_id, "timings_ms": result.timings}


def plan(paths, annotate_dir=None) -> list:
    """[(file, error, annotate_to), ...] for PATHs as `recognize` takes them: folders expanded
    (sorted, not recursive), a missing path or an empty folder carried as an error, and the name
    of each annotated image fixed up front (so a resumed run names it as the first run did)."""
    from .cli import image_files, unique_name

    used, jobs = set(), []
    for path, error in image_files([Path(p) for p in paths]):
        to = None
        if annotate_dir is not None and not error:
            to = str(unique_name(Path(annotate_dir), path.stem, used))
        jobs.append((str(path), error, to))
    return jobs


# --- many files on many processes ----------------------------------------------------------------

def _chunks(items, size):
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def _run_chunk(fn, chunk):
    return [fn(item) for item in chunk]


def _ping():
    return os.getpid()


def ordered_map(fn, items, workers: int, initializer=None, initargs=(), chunksize: int = 1,
                on_crash=None, window: int | None = None):
    """Yield fn(item) for every item, in input order, computed in `workers` spawned processes.

    `fn` (and `initializer`) must be module-level functions (they are pickled by name). At most
    `window` chunks (default 4 per worker) are in flight, so memory stays flat however many items
    come. A worker that dies (a crash in native code on one odd file, the OOM killer) does not stop
    the run: the chunks that were in flight are read again, one item at a time, in a fresh pool,
    and an item that kills its worker again yields on_crash(item, reason) (raises if on_crash is
    None). A fresh pool whose workers cannot even start raises EdgeDigitsError.
    """
    ctx = multiprocessing.get_context("spawn")   # no fork of a process that has threads or OpenCV
    window = window or 4 * workers

    def new_pool(check: bool = False):
        pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=initializer, initargs=initargs)
        if check:
            try:
                pool.submit(_ping).result()
            except BrokenProcessPool:
                pool.shutdown(wait=False, cancel_futures=True)
                raise EdgeDigitsError("the worker processes die as they start (try --workers 1)") from None
        return pool

    pool = new_pool()
    source = _chunks(items, chunksize)
    pending = deque()                            # (chunk, future), in input order
    finished = False
    try:
        while True:
            while len(pending) < window:
                chunk = next(source, None)
                if chunk is None:
                    break
                pending.append((chunk, pool.submit(_run_chunk, fn, chunk)))
            if not pending:
                finished = True
                return
            chunk, future = pending[0]
            try:
                results = future.result()
            except BrokenProcessPool:
                suspects = list(pending)
                pending.clear()
                pool.shutdown(wait=False, cancel_futures=True)
                pool = new_pool(check=True)
                for chunk, future in suspects:   # what finished before the break is kept
                    if future.done() and not future.cancelled() and future.exception() is None:
                        yield from future.result()
                        continue
                    for item in chunk:           # the rest: one at a time, to find the culprit
                        try:
                            result = pool.submit(_run_chunk, fn, [item]).result()[0]
                        except BrokenProcessPool:
                            pool.shutdown(wait=False, cancel_futures=True)
                            pool = new_pool(check=True)
                            if on_crash is None:
                                raise
                            result = on_crash(item, "the worker process reading it died")
                        yield result
                continue
            pending.popleft()
            yield from results
    finally:                                     # all done: the idle workers exit now, and are reaped
        pool.shutdown(wait=finished, cancel_futures=True)


_WORKER = {}


def _init_worker(model, backend, threads, page):
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)     # Ctrl-C is the parent's to handle
    try:
        import cv2

        cv2.setNumThreads(1)                         # one process per core: no threads on top
        from .recognizer import Recognizer

        _WORKER["rec"] = Recognizer(model, threads=threads, backend=backend)
    except Exception as e:                           # reported on each file, never a dead pool
        _WORKER["error"] = f"the worker process cannot load the model: {error_message(e, model)}"
    _WORKER["page"] = page


def _read_job(job):
    file, error, annotate_to = job
    rec = _WORKER.get("rec")
    if rec is None:
        return {"file": file, "model": None, "error": f"{file}: {_WORKER['error']}"}
    if error:
        return {"file": file, "model": rec.model_id, "error": error}
    return read_file(file, rec, page=_WORKER["page"], annotate_to=annotate_to)


def read_jobs(jobs, workers: int | None = None, model=None, backend: str = "auto", threads: int = 1,
              page: bool = True, recognizer=None):
    """Records for `jobs` (from plan()), in input order.

    workers=1 (or a single job) reads in this process with `recognizer` (built from model/backend/
    threads if not given); more start that many processes (spawned), each with its own Recognizer
    of the same model file and backend, and OpenCV on one thread. Default: every core.
    """
    from .recognizer import Recognizer

    jobs = list(jobs)
    rec = recognizer or Recognizer(model, threads=threads, backend=backend)   # the model is checked here
    workers = min(workers or default_workers(), len(jobs))
    if workers <= 1:
        for file, error, annotate_to in jobs:
            yield ({"file": file, "model": rec.model_id, "error": error} if error
                   else read_file(file, rec, page=page, annotate_to=annotate_to))
        return
    chunksize = max(1, min(8, len(jobs) // (16 * workers)))
    yield from ordered_map(
        _read_job, jobs, workers, initializer=_init_worker,
        initargs=(str(rec.path), rec.backend, rec.threads, page), chunksize=chunksize,
        on_crash=lambda job, why: {"file": job[0], "model": rec.model_id, "error": f"{job[0]}: {why}"})


def read_files(paths, workers: int | None = None, model=None, backend: str = "auto", threads: int = 1,
               page: bool = True, annotate_dir=None, skip=()):
    """Records for every image in `paths` (files or folders), in input order; see read_jobs."""
    jobs = [j for j in plan(paths, annotate_dir) if j[0] not in skip]
    return read_jobs(jobs, workers=workers, model=model, backend=backend, threads=threads, page=page)


# --- output --------------------------------------------------------------------------------------

class JsonlWriter:
    """One JSON line per record, written so that a killed run leaves only whole lines.

    Each line goes out in one write() of the whole line and its newline, unbuffered; the file is
    fsync'ed every `sync_every` seconds and on close. An existing non-empty file is refused unless
    `resume` (go on from it) or `force` (start it again). On resume a trailing partial line (a
    kill in the middle of a write, a full disk) is cut off first, and `done` maps each file already
    there to whether it failed. The file is locked while open, so two runs never write it at once.
    """

    def __init__(self, path, resume: bool = False, force: bool = False, sync_every: float = 2.0):
        self.path, self.sync_every = Path(path), sync_every
        self.done = {}
        if self.path.is_dir():
            raise EdgeDigitsError(f"{self.path}: is a folder; --jsonl takes a file name")
        exists = self.path.is_file() and self.path.stat().st_size > 0
        if exists and not (resume or force):
            raise EdgeDigitsError(f"{self.path} already holds results: add --resume to go on from "
                                  f"them, or --force to start it again")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(self.path, "ab" if resume else "r+b" if exists else "wb", buffering=0)
        try:
            self._lock()
            if resume and exists:
                self.done = self._recover()
            elif exists:                          # --force: only now, with the lock held
                self.file.truncate(0)
        except BaseException:
            self.file.close()
            raise
        self.synced = time.monotonic()

    def _lock(self):
        try:
            import fcntl
        except ImportError:                      # Windows: no lock
            return
        try:
            fcntl.flock(self.file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise EdgeDigitsError(f"{self.path}: another run is writing this file") from None

    def _recover(self) -> dict:
        done, end = {}, 0
        with open(self.path, "rb") as f:
            for n, line in enumerate(f, 1):
                if not line.endswith(b"\n"):     # the partial last line of a killed run
                    break
                try:
                    record = json.loads(line)
                    done[str(record["file"])] = "error" in record
                except (ValueError, KeyError, TypeError):
                    raise EdgeDigitsError(f"{self.path}:{n}: not a line `recognize --jsonl` writes; "
                                          f"not resuming (the file is left as it was)") from None
                end += len(line)
        if end < self.path.stat().st_size:
            self.file.truncate(end)
        return done

    def write(self, record: dict) -> None:
        data = memoryview((json.dumps(record) + "\n").encode())
        while data:                               # one write for a regular file; a loop for safety
            data = data[self.file.write(data):]
        if time.monotonic() - self.synced >= self.sync_every:
            self.sync()

    def sync(self) -> None:
        os.fsync(self.file.fileno())
        self.synced = time.monotonic()

    def close(self) -> None:
        if not self.file.closed:
            self.sync()
            self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _clock(seconds) -> str:
    if seconds is None:
        return "?"
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class Progress:
    """`1234/20000 pages  6%  31.5 pages/s  ETA 8:52` on stderr, redrawn at most 5 times a second
    on a terminal (every 5 s, one line each, when stderr is a file or pipe). Off: print() only."""

    def __init__(self, total: int, enabled: bool, stream=None, unit: str = "pages"):
        self.total, self.enabled, self.unit = total, enabled, unit
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every = 0.2 if self.tty else 5.0
        self.done, self.t0, self.shown, self.drawn = 0, time.monotonic(), 0.0, False

    def text(self, now=None) -> str:
        elapsed = (now or time.monotonic()) - self.t0
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else None
        share = f"{self.done / self.total:.0%}" if self.total else "100%"
        return (f"{self.done}/{self.total} {self.unit}  {share}  {rate:.1f} {self.unit}/s  "
                f"{'ETA ' + _clock(eta) if self.done < self.total else 'in ' + _clock(elapsed)}")

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and (now - self.shown >= self.every or self.done >= self.total):
            self.shown = now
            self._draw(self.text(now))

    def _draw(self, text):
        if self.tty:
            self.stream.write("\r" + text + "\x1b[K")
            self.drawn = True
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def clear(self) -> None:
        """Take the meter off the line (before something else is written to the terminal)."""
        if self.drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.drawn = False
            self.shown = 0.0                     # redraw on the next update

    def print(self, message: str) -> None:
        self.clear()
        print(message, file=self.stream, flush=True)

    def close(self) -> None:
        if self.enabled and self.tty and self.done:
            self._draw(self.text())
            self.stream.write("\n")
            self.drawn = False


# --- Ray Data ------------------------------------------------------------------------------------

def import_ray():
    """ray and ray.data, or EdgeDigitsError telling how to install them."""
    try:
        import pyarrow  # noqa: F401  (Ray Data's block format)
        import ray
        import ray.data
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] in ("ray", "pyarrow", "pandas"):
            raise EdgeDigitsError(f"--ray needs Ray Data ({e.name!r} is not installed): {SCALE_HINT}") from None
        raise
    return ray


def ray_connect(address: str) -> bool:
    """Start ("local") or join (any other address: "auto", "ray://head:10001", ...) a Ray instance.
    True if this call started it (then ray.shutdown() is the caller's); False if one was running."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    kw = dict(logging_level="WARNING", log_to_driver=False)
    try:
        if address == "local":
            ray.init(include_dashboard=False, **kw)
        else:
            ray.init(address=address, **kw)
    except (ConnectionError, TimeoutError, ValueError, RuntimeError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise EdgeDigitsError(f"cannot start or reach Ray at {address!r}: {first}") from None
    return True


def ray_schema():
    """The rows of ray_dataset(): digits and rejected marks as JSON text (the JSONL line's lists),
    so the table keeps one schema whatever a page holds; error is null where the file was read."""
    import pyarrow as pa

    return pa.schema([("file", pa.string()), ("lines", pa.list_(pa.string())), ("digits", pa.string()),
                      ("turn", pa.float64()), ("rejected", pa.string()), ("model", pa.string()),
                      ("timings_ms", pa.map_(pa.string(), pa.float64())), ("error", pa.string())])


def _to_row(record: dict) -> dict:
    if "error" in record:
        return {"file": record["file"], "model": record.get("model"), "error": record["error"]}
    return {**record, "digits": json.dumps(record["digits"]), "rejected": json.dumps(record["rejected"]),
            "timings_ms": list(record["timings_ms"].items()), "error": None}


def row_to_record(row: dict) -> dict:
    """A row of ray_dataset() as the record read_file() gives (the JSONL line)."""
    if row.get("error") is not None:
        return {"file": row["file"], "model": row.get("model"), "error": row["error"]}
    timings = row["timings_ms"]
    return {"file": row["file"], "lines": list(row["lines"]), "digits": json.loads(row["digits"]),
            "turn": row["turn"], "rejected": json.loads(row["rejected"]), "model": row["model"],
            "timings_ms": dict(timings.items() if isinstance(timings, dict) else timings)}


class PageReader:
    """Ray Data callable class: one Recognizer per actor (built once), a batch of files -> rows.

    The model comes as bytes, so every node reads with the very model the driver chose."""

    def __init__(self, model_bytes: bytes, model_name: str, backend: str = "auto", threads: int = 1,
                 page: bool = True):
        import tempfile

        import cv2

        from .recognizer import Recognizer

        cv2.setNumThreads(1)
        with tempfile.TemporaryDirectory(prefix="edgedigits-model-") as folder:
            path = Path(folder) / model_name
            path.write_bytes(model_bytes)
            self.rec = Recognizer(path, threads=threads, backend=backend)
        self.page = page

    def __call__(self, batch):
        import pyarrow as pa

        rows = []
        for file, path, error, to in zip(batch["file"], batch["path"], batch["error"], batch["annotate"]):
            record = ({"file": file, "model": self.rec.model_id, "error": error} if error else
                      read_file(path, self.rec, page=self.page, annotate_to=to or None, file=file))
            rows.append(_to_row(record))
        return pa.Table.from_pylist(rows, schema=ray_schema())


def ray_dataset(paths, workers: int | None = None, model=None, backend: str = "auto", threads: int = 1,
                page: bool = True, annotate_dir=None, skip=(), batch_size: int = 4, recognizer=None):
    """A Ray Dataset of one row per image in `paths` (see ray_schema), in input order.

    Paths are listed here, on the driver, and must be readable at the same absolute path on every
    node (a shared file system). `workers` actors (default: the cluster's CPUs) each hold one
    Recognizer; batches of `batch_size` files go to them. Joins (or starts) Ray if not yet
    initialised. Execution is lazy: iterate it (ray_records) or write it (ds.write_parquet(DIR)).
    """
    jobs = [j for j in plan(paths, annotate_dir) if j[0] not in skip]
    return ray_read_jobs(jobs, workers=workers, model=model, backend=backend, threads=threads, page=page,
                         batch_size=batch_size, recognizer=recognizer)


def ray_read_jobs(jobs, workers: int | None = None, model=None, backend: str = "auto", threads: int = 1,
                  page: bool = True, batch_size: int = 4, recognizer=None, progress_bars: bool | None = None):
    """ray_dataset() of jobs from plan(); progress_bars turns Ray Data's own on or off."""
    ray = import_ray()
    from .recognizer import Recognizer

    rec = recognizer or Recognizer(model, threads=threads, backend=backend)   # checked once, here
    items = [{"file": file, "path": os.path.abspath(file), "error": error or "",
              "annotate": os.path.abspath(to) if to else ""} for file, error, to in jobs]
    if not items:
        raise EdgeDigitsError("no files to read")
    if not ray.is_initialized():
        ray_connect("local")
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    if progress_bars is not None:
        context.enable_progress_bars = progress_bars
    workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    return ray.data.from_items(items).map_batches(
        PageReader, fn_constructor_kwargs=dict(model_bytes=rec.path.read_bytes(), model_name=rec.path.name,
                                               backend=rec.backend, threads=rec.threads, page=page),
        compute=ray.data.ActorPoolStrategy(size=max(1, min(workers, len(items)))),
        batch_size=batch_size, batch_format="numpy", num_cpus=1)


def ray_records(ds):
    """Records (as read_file gives them) of a ray_dataset(), streamed to the driver in order."""
    for row in ds.iter_rows():
        yield row_to_record(row)


def parquet_errors(folder) -> list:
    """[(file, error), ...] of the failed rows in a Parquet folder written from ray_dataset()."""
    import pyarrow.dataset as pads

    table = pads.dataset(str(folder), format="parquet").to_table(columns=["file", "error"])
    return [(r["file"], r["error"]) for r in table.to_pylist() if r["error"] is not None]


# --- bench-archive -------------------------------------------------------------------------------

def make_pages(sources, folder, n: int, seed: int = 0, megapixels=(0.3, 1.0)) -> list:
    """Write n JPEG pages into `folder`, each a random crop (80-100% of each side) of one of the
    `sources` images (in turn), scaled to 0.3-1 MP and flipped one way, both or not at all."""
    import cv2
    import numpy as np

    from .page import load_image

    images = [load_image(p) for p in sources]
    if not images:
        raise EdgeDigitsError("no images to make pages from")
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        image = images[i % len(images)]
        h, w = image.shape[:2]
        ch, cw = max(1, int(h * rng.uniform(0.8, 1.0))), max(1, int(w * rng.uniform(0.8, 1.0)))
        y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        crop = image[y:y + ch, x:x + cw]
        s = float(np.sqrt(rng.uniform(*megapixels) * 1e6 / (ch * cw)))
        page = cv2.resize(crop, (max(1, round(cw * s)), max(1, round(ch * s))),
                          interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
        flip = int(rng.integers(-2, 2))                       # -2: none; else cv2.flip's code
        if flip > -2:
            page = cv2.flip(page, flip)
        ok, data = cv2.imencode(".jpg", page, [cv2.IMWRITE_JPEG_QUALITY, 90])
        path = folder / f"page-{i:05d}.jpg"
        path.write_bytes(data.tobytes())
        out.append(path)
    return out


def bench(pages, workers_list=(1, 2), model=None, backend: str = "auto", out_dir=None) -> dict:
    """Time `recognize --jsonl` on the `pages` with each number of workers (1 = in this process,
    OpenCV on one thread; n = n spawned processes): wall time including start-up, pages/s, and
    the CPU time it took (cores_used = CPU seconds / wall seconds: below the number of workers
    when something else had the cores too)."""
    import tempfile

    import cv2

    from .recognizer import Recognizer

    def cpu_seconds():                           # this process and its reaped children
        try:
            import resource
        except ImportError:
            return None
        return sum(u.ru_utime + u.ru_stime for u in (resource.getrusage(resource.RUSAGE_SELF),
                                                     resource.getrusage(resource.RUSAGE_CHILDREN)))

    cv2.setNumThreads(1)
    rec = Recognizer(model, threads=1, backend=backend)
    jobs = [(str(p), None, None) for p in pages]
    rows, reference = [], None
    with tempfile.TemporaryDirectory(prefix="edgedigits-bench-") as tmp:
        for workers in workers_list:
            load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
            cpu0, t0 = cpu_seconds(), time.perf_counter()
            first, failed, lines = None, 0, []
            with JsonlWriter(Path(out_dir or tmp) / f"workers-{workers}.jsonl", force=True) as out:
                for record in read_jobs(jobs, workers=workers, recognizer=rec):
                    first = first or time.perf_counter() - t0
                    failed += "error" in record
                    lines.append(record.get("lines"))
                    out.write(record)
            seconds = time.perf_counter() - t0
            cpu = None if cpu0 is None else cpu_seconds() - cpu0
            reference = reference or lines
            rows.append({"workers": workers, "seconds": round(seconds, 2),
                         "cpu_ms_per_page": None if cpu is None else round(cpu * 1000 / len(jobs), 1),
                         "cores_used": None if cpu is None else round(cpu / seconds, 2),
                         "pages_per_s": round(len(jobs) / seconds, 2), "first_page_s": round(first or 0, 2),
                         "failed": failed, "same_lines": lines == reference,
                         "load_before": None if load is None else round(load, 2)})
    base = rows[0]["pages_per_s"]
    for r in rows:
        r["speedup"] = round(r["pages_per_s"] / base, 2)
        r["pages_per_s_per_worker"] = round(r["pages_per_s"] / r["workers"], 2)
    return {"pages": len(jobs), "cores": default_workers(), "model": rec.model_id, "backend": rec.backend,
            "rows": rows}
