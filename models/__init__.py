"""The shipped models: one folder per model (weights, config, card, exports)."""

from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent
DEFAULT_MODEL = "cnn"


def shipped(name: str = DEFAULT_MODEL) -> Path:
    """Folder of a shipped model, e.g. ``shipped("cnn") / "model.safetensors"``."""
    return MODELS_DIR / name
