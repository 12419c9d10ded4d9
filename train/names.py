"""The names the trainer's options choose from, in one place and without torch, so that the
command line (`cli.py`, `compare.py`) offers them while `--help` stays instant. models.py,
augment.py and train.py build on these names; tests/test_cli.py checks that they agree."""

MODEL_NAMES = ("mlp", "cnn", "cnn-tiny")
ACTIVATION_NAMES = ("relu", "leaky_relu", "prelu", "elu")
# "gap": no pooling between stages (a stride-2 convolution downsamples instead): the global
# average before the classifier is the network's only pooling (an all-convolutional net)
POOL_NAMES = ("max", "avg", "gap")
AUG_NAMES = ("affine", "elastic", "thickness", "blur", "contrast", "noise")
LOSS_NAMES = ("ce", "mse", "hinge", "huber")
OPTIMIZER_NAMES = ("adamw", "adam", "sgd")
SCHEDULE_NAMES = ("onecycle", "cosine", "none")
