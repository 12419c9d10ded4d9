"""Checkpoints are weights (safetensors) plus a JSON config: loading never runs pickled code."""

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from edgedigits.errors import EdgeDigitsError

from .models import build_model

WEIGHTS, CONFIG = "model.safetensors", "model.json"


class CheckpointError(EdgeDigitsError):
    """A checkpoint that cannot be used; the message is one line."""


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def save_checkpoint(model: torch.nn.Module, config: dict, out_dir: Path) -> Path:
    """Write model.safetensors and model.json into out_dir (each via a temporary name)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = out_dir / (WEIGHTS + ".tmp")
    save_file(tensors, str(tmp), metadata={"model": config["model"]})
    os.replace(tmp, out_dir / WEIGHTS)
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
    if not weights.exists():
        raise CheckpointError(f"{weights}: no such checkpoint")
    if not config_path.exists():
        raise CheckpointError(f"{weights}: its config {config_path.name} is missing beside it")
    try:
        config = json.loads(config_path.read_text())
        state = load_file(str(weights), device=device)
    except Exception as e:  # safetensors raises its own error types
        raise CheckpointError(f"{weights}: not a valid checkpoint ({str(e).splitlines()[0]})") from None
    try:
        model = build_model(config["model"], config.get("activation", "relu"),
                            config.get("pool", "max"), **config.get("model_kwargs", {}))
        model.load_state_dict(state)
    except (KeyError, RuntimeError, ValueError, TypeError) as e:
        raise CheckpointError(f"{weights}: weights do not fit its config ({str(e).splitlines()[0]})") from None
    return model.to(device).eval(), config
