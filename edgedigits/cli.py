"""`edgedigits COMMAND ...`: one console command; each part of the project adds its subcommands.

Subcommand modules import their heavy dependencies only when run, so `edgedigits recognize`
works on a device that has no torch, and `--help` is instant.
"""

import argparse
import os
import re
import sys

from .errors import EdgeDigitsError
from .runtime import keep_freed_memory

# the distribution of a top-level module a subcommand may need, where the two names differ
# (the extra that installs it is read from pyproject.toml's extras: `extra_for`)
DISTRIBUTIONS = {"cv2": "opencv-python-headless", "ai_edge_litert": "ai-edge-litert", "PIL": "pillow",
                 "tf_keras": "tf-keras"}


def extra_for(module: str) -> str | None:
    """The extra of pyproject.toml (`pip install 'edgedigits[EXTRA]'`) that installs this top-level
    module, from the installed package's metadata; None when no extra lists it."""
    from importlib import metadata

    def canonical(name):
        return re.sub(r"[-_.]+", "-", name).lower()

    try:
        requires = metadata.requires("edgedigits") or []
    except metadata.PackageNotFoundError:          # run from a source tree that is not installed
        return None
    wanted = canonical(DISTRIBUTIONS.get(module, module))
    for requirement in requires:
        m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)[^;]*;\s*extra\s*==\s*[\"']([^\"']+)", requirement)
        if m and canonical(m.group(1)) == wanted:
            return m.group(2)
    return None


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: `edgedigits train: error: ... (see --help)`."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from edgedigits import __version__
    from edgedigits.train import cli as train_cli
    from edgedigits.train import compare as train_compare

    parser = Parser(prog="edgedigits", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"edgedigits {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train_cli.register(sub)
    train_compare.register(sub)
    for module in ("edgedigits.export.cli", "edgedigits.export.finetune", "edgedigits.runtime.cli",
                   "edgedigits.camera_demo.cli", "edgedigits.runtime.fuzz", "edgedigits.runtime.web"):
        try:
            __import__(module, fromlist=["register"]).register(sub)
        except ModuleNotFoundError as e:
            if e.name != module:
                raise
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    prog = f"edgedigits {args.command}"
    keep_freed_memory()                          # page after page without page faults (glibc)
    if getattr(args, "max_pixels", None):        # read by runtime.images.load_image, in workers too
        os.environ["EDGEDIGITS_MAX_PIXELS"] = str(args.max_pixels)
    try:
        return args.func(args) or 0
    except EdgeDigitsError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
    except ModuleNotFoundError as e:
        top = (e.name or "").split(".")[0]
        extra = extra_for(top)
        hint = f"; install it with: pip install 'edgedigits[{extra}]'" if extra else ""
        print(f"{prog}: error: this command needs the Python package {top!r}{hint}", file=sys.stderr)
    except (FileNotFoundError, IsADirectoryError, PermissionError) as e:
        print(f"{prog}: error: {e.strerror}: {e.filename}", file=sys.stderr)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:          # `edgedigits ... | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return 2


if __name__ == "__main__":
    sys.exit(main())
