"""The page reader's tuning values, from `tuning.json` beside this file.

The web app's JavaScript port of this runtime (`web/src/runtime/`) reads the same file, so a value
changed here changes both readers, and `tests/test_tuning.py` fails when a value is read by one side
only. Each module takes its own section:

    from .tuning import TUNING
    T = TUNING["ink"]
    WINDOW = T["WINDOW"]      # what it means, said here where it is used
"""

import json
from importlib.resources import files

TUNING = json.loads(files(__package__).joinpath("tuning.json").read_text(encoding="utf-8"))
