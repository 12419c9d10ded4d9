"""A run folder (`train --out DIR`): what may be written into it, where the best model waits, and
resuming it.

A finished model in DIR is never trained over unless asked (`--force`); the package's shipped
`models/` is never a run folder. While a run trains, its best checkpoint lives in DIR/best/ and is
moved to DIR/model.safetensors only when the run finishes, so an interrupted run leaves the model
that was there before as it was. `--resume` continues from DIR/last.pt with the recipe the run
was started with (its model.json), and refuses a last.pt that is not a state of this trainer
(truncated, garbage, pickled code, another model) in one line.
"""

import json
import shutil
from pathlib import Path

import torch

from edgedigits.errors import EdgeDigitsError

from .checkpoint import CONFIG, WEIGHTS

LAST_STATE = "last.pt"
BEST = "best"          # DIR/best/: the best checkpoint of the run in progress
STATE_KEYS = {"epoch": int, "epochs": int, "model": dict, "optimizer": dict, "scheduler": dict,
              "best_val": float, "bad_epochs": int, "history": str}


def shipped_root() -> Path:
    from edgedigits.models import shipped

    return shipped().parent.resolve()


def check_out_dir(out_dir: Path, resume: bool, force: bool) -> None:
    """Refuse a run folder that would lose a model: the shipped models/, a folder holding a finished
    model (unless `force`), `resume` without a state to resume. A forced new run starts clean."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise EdgeDigitsError(f"--out {out}: is a file, not a run folder")
    root, target = shipped_root(), out.resolve()
    if target == root or root in target.parents:
        raise EdgeDigitsError(f"--out {out}: the package's shipped models; train into a run folder "
                              "(runs/NAME) and copy the finished model there by hand")
    finished = (out / WEIGHTS).exists()
    if resume:
        if not (out / LAST_STATE).exists():
            held = (" (it holds a finished model; train it again with --force, without --resume)"
                    if finished else "")
            raise EdgeDigitsError(f"--resume: {out / LAST_STATE} is missing, nothing to resume{held}")
        return
    if finished and not force:
        raise EdgeDigitsError(f"--out {out}: already holds a trained model ({WEIGHTS}); add --force to "
                              "train over it, --resume to continue its run, or choose another --out")
    (out / LAST_STATE).unlink(missing_ok=True)          # never resume an older run's state
    shutil.rmtree(out / BEST, ignore_errors=True)


def run_config(out_dir: Path) -> dict:
    """The model.json of a run in progress (DIR/best/) or finished (DIR)."""
    out = Path(out_dir)
    for path in (out / BEST / CONFIG, out / CONFIG):
        if path.exists():
            try:
                config = json.loads(path.read_text())
            except (ValueError, OSError) as e:
                raise EdgeDigitsError(f"{path}: not a readable model.json ({e})") from None
            if not isinstance(config, dict) or not isinstance(config.get("recipe"), dict):
                raise EdgeDigitsError(f"{path}: holds no recipe to resume the run with")
            return config
    raise EdgeDigitsError(f"--resume: {out} has no {CONFIG} (the run stopped before its first epoch "
                          "ended; start it again)")


def resume_recipe(out_dir: Path, recipe_type):
    """The recipe a run was started with, from its model.json (--resume continues it as it was)."""
    check_out_dir(out_dir, resume=True, force=False)
    stored = run_config(out_dir)["recipe"]
    known = {f for f in recipe_type.__dataclass_fields__}
    unknown = sorted(set(stored) - known)
    if unknown:
        raise EdgeDigitsError(f"--resume: the run's recipe has fields this trainer does not know: "
                              f"{', '.join(unknown)}")
    try:
        return recipe_type(**stored)
    except TypeError as e:
        raise EdgeDigitsError(f"--resume: the run's recipe does not load ({e})") from None


def load_state(path: Path, device) -> dict:
    """DIR/last.pt, checked: plain tensors and numbers only (weights_only), the keys this trainer
    writes. Any other file is refused in one line (never with advice to unpickle it)."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:        # torch raises RuntimeError, UnpicklingError, EOFError, zip errors...
        pickled = "unsupported global" in str(e).lower()      # code to run: blocked by weights_only
        why = "it holds pickled objects, not plain tensors" if pickled else "truncated or not a torch file"
        raise EdgeDigitsError(f"{path}: not a training state of this trainer ({why}); delete it to "
                              "start the run again") from None
    if not isinstance(state, dict) or any(not isinstance(state.get(k), t) and not
                                          (t is float and isinstance(state.get(k), int))
                                          for k, t in STATE_KEYS.items()):
        raise EdgeDigitsError(f"{path}: not a training state of this trainer (keys "
                              f"{sorted(state)[:8] if isinstance(state, dict) else type(state).__name__}); "
                              "delete it to start the run again")
    return state


def restore(path: Path, state: dict, model, optimizer, scheduler, epochs: int):
    """Load a checked state into the run's model, optimizer and scheduler; returns
    (start epoch, best validation accuracy, bad epochs, history)."""
    if state["epochs"] != epochs:
        raise EdgeDigitsError(f"{path} belongs to a {state['epochs']}-epoch run; resume it with "
                              f"--epochs {state['epochs']} (the schedule depends on it)")
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history = json.loads(state["history"])
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise EdgeDigitsError(f"{path}: does not fit this run's model ({first})") from None
    if not isinstance(history, list):
        raise EdgeDigitsError(f"{path}: its history is not a list of epochs")
    return state["epoch"] + 1, state["best_val"], state["bad_epochs"], history


def best_dir(out_dir: Path) -> Path:
    """Where the best checkpoint is: DIR/best/ while a run is in progress, DIR once it finished."""
    best = Path(out_dir) / BEST
    return best if (best / WEIGHTS).exists() else Path(out_dir)


def promote(out_dir: Path) -> None:
    """Move the finished run's best checkpoint from DIR/best/ to DIR (each file by a rename)."""
    best = Path(out_dir) / BEST
    if (best / WEIGHTS).exists():
        for name in (WEIGHTS, CONFIG):
            if (best / name).exists():
                (best / name).replace(Path(out_dir) / name)
        shutil.rmtree(best, ignore_errors=True)
