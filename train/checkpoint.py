"""Checkpoints are weights (safetensors) plus a JSON config: loading never runs pickled code."""

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save

from edgedigits.common import atomic_write
from edgedigits.errors import EdgeDigitsError

from .models import build_model

WEIGHTS, CONFIG = "model.safetensors", "model.json"


class CheckpointError(EdgeDigitsError):
    """A checkpoint that cannot be used; the message is one line."""


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, text)


def save_checkpoint(model: torch.nn.Module, config: dict, out_dir: Path) -> Path:
    """Write model.safetensors and model.json into out_dir (each via a temporary name)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write(out_dir / WEIGHTS, save(tensors, metadata={"model": config["model"]}))
    atomic_write_text(out_dir / CONFIG, json.dumps(config, indent=2) + "\n")
    return out_dir / WEIGHTS


def resolve_weights(path) -> Path:
    """Accept a run folder or the .safetensors file itself."""
    path = Path(path)
    return path / WEIGHTS if path.is_dir() else path


def load_checkpoint(path, device: str = "cpu"):
    """Return (model in eval mode, config dict) from a .safetensors file and its model.json."""
    weights = resolve_weights(path)
    config_path = weights.with_name(CONFIG)
    if weights.suffix.lower() in (".onnx", ".tflite"):
        raise CheckpointError(f"{weights}: an exported model, not a checkpoint; this takes a .safetensors "
                              "file or its run folder (exported files: edgedigits benchmark / eval-paper)")
    if not weights.exists():
        raise CheckpointError(f"{weights}: no such checkpoint")
    if not config_path.exists():
        raise CheckpointError(f"{weights}: its config {config_path.name} is missing beside it")
    try:
        config = json.loads(config_path.read_text())
        state = load_file(str(weights), device=device)
    except Exception as e:  # safetensors raises its own error types
        first = (str(e).splitlines() or [type(e).__name__])[0]
        raise CheckpointError(f"{weights}: not a valid checkpoint ({first})") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{config_path}: not a JSON object")
    try:
        kwargs = config.get("model_kwargs", {})
        args = (config["model"], config.get("activation", "relu"), config.get("pool", "max"))
        with torch.device("meta"):          # shapes only, no memory: a config asking for huge layers
            shapes = {k: tuple(v.shape) for k, v in build_model(*args, **kwargs).state_dict().items()}
        found = {k: tuple(v.shape) for k, v in state.items()}
        if shapes != found:
            wrong = sorted(set(shapes) ^ set(found)) or [k for k in shapes if shapes[k] != found[k]]
            raise ValueError(f"{wrong[0]}: config {shapes.get(wrong[0])}, weights {found.get(wrong[0])}")
        model = build_model(*args, **kwargs)
        model.load_state_dict(state)
    except (KeyError, RuntimeError, ValueError, TypeError, AttributeError) as e:
        first = (str(e).splitlines() or [type(e).__name__])[0]
        raise CheckpointError(f"{weights}: weights do not fit its config ({first})") from None
    return model.to(device).eval(), config
