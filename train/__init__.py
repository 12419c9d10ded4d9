"""Training: MNIST loader, augmentation, models, trainer, evaluation (needs the `train` extra)."""
