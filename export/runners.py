"""Run one exported file in one runtime and get raw logits back: what the exporter's checks and
the benchmark measure. Each runner takes MNIST-style crops, float32 [N, 28, 28] in [0, 1], and
returns float32 logits [N, 10], whatever the file's layout, batch size or integer I/O.

The on-device `edgedigits.runtime.Recognizer` does the same job for apps (and returns
probabilities); these runners stay here so the benchmark measures each engine directly.
"""

import os
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from edgedigits.common import quiet_output
from edgedigits.errors import EdgeDigitsError

from .formats import RUNTIMES


@contextmanager
def quiet():
    """Swallow what native code prints on stdout/stderr meanwhile (converter logs, LiteRT's
    "INFO: Created TensorFlow Lite XNNPACK delegate", torch/absl warnings) and Python warnings.
    Errors still arrive as exceptions; set EDGEDIGITS_VERBOSE=1 to see everything."""
    with warnings.catch_warnings(), quiet_output(stdout=True, stderr=True):
        if not os.environ.get("EDGEDIGITS_VERBOSE"):
            warnings.simplefilter("ignore")
        yield


class Runner:
    """Base: `predict(images) -> logits`; `batching` says how a batch of 64 is run."""

    runtime = ""
    batching = "batched"

    def __init__(self, path: Path, threads: int):
        self.path, self.threads = Path(path), threads

    def predict(self, images: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class TorchRunner(Runner):
    runtime = "pytorch"

    def __init__(self, path, threads):
        super().__init__(path, threads)
        import torch

        from edgedigits.train.checkpoint import load_checkpoint

        self.torch = torch
        self.model, self.config = load_checkpoint(path)

    def predict(self, images):
        torch = self.torch
        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            with torch.inference_mode():
                return self.model(torch.from_numpy(np.ascontiguousarray(images)).unsqueeze(1)).numpy()
        finally:
            torch.set_num_threads(before)


class OrtRunner(Runner):
    runtime = "onnxruntime"

    def __init__(self, path, threads):
        super().__init__(path, threads)
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = threads
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def predict(self, images):
        return self.session.run(None, {self.input: images[:, None].astype(np.float32)})[0]


class OpenCVRunner(Runner):
    runtime = "opencv"

    def __init__(self, path, threads):
        super().__init__(path, threads)
        import cv2

        cv2.setNumThreads(threads)
        self.net = cv2.dnn.readNetFromONNX(str(path))

    def predict(self, images):
        self.net.setInput(np.ascontiguousarray(images[:, None], dtype=np.float32))
        return self.net.forward().reshape(len(images), -1)


class LiteRTRunner(Runner):
    """A fixed-batch-1 .tflite is resized to the batch when its graph allows it, else looped."""

    runtime = "litert"

    def __init__(self, path, threads):
        super().__init__(path, threads)
        from ai_edge_litert.interpreter import Interpreter

        self.Interpreter = Interpreter
        self._open()
        self.batching = "batched"
        if self.input["shape_signature"][0] != -1:
            self.batching = "resize" if self._resize(64) else "loop"
            self._open()

    def _open(self):
        self.interpreter = self.Interpreter(model_path=str(self.path), num_threads=self.threads)
        self.interpreter.allocate_tensors()
        self._details()

    def _details(self):  # cached: get_*_details() builds dicts on every call
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]

    def _resize(self, batch: int) -> bool:
        try:
            self.interpreter.resize_tensor_input(self.input["index"], [batch, *self.input["shape"][1:]],
                                                 strict=False)
            self.interpreter.allocate_tensors()
        except (RuntimeError, ValueError):
            return False
        self._details()
        return True

    def _invoke(self, x: np.ndarray) -> np.ndarray:
        inp, out = self.input, self.output
        if inp["dtype"] != np.float32:  # integer input: quantize with the model's own scale
            scale, zero = inp["quantization"]
            info = np.iinfo(inp["dtype"])
            x = np.clip(np.round(x / scale) + zero, info.min, info.max)
        self.interpreter.set_tensor(inp["index"], x.astype(inp["dtype"], copy=False).reshape(inp["shape"]))
        self.interpreter.invoke()
        y = self.interpreter.get_tensor(out["index"])
        if out["dtype"] != np.float32:
            scale, zero = out["quantization"]
            y = (y.astype(np.float32) - zero) * scale
        return y.reshape(len(x), -1)

    def predict(self, images):
        nhwc = self.input["shape"][-1] == 1  # [N,28,28,1]; otherwise [N,1,28,28]
        x = images[..., None] if nhwc else images[:, None]
        if self.batching == "loop":
            return np.concatenate([self._invoke(x[i:i + 1]) for i in range(len(x))])
        if self.input["shape"][0] != len(x) and not self._resize(len(x)):
            raise EdgeDigitsError(f"{self.path}: cannot resize the input to batch {len(x)}")
        return self._invoke(x)


RUNNERS = {"pytorch": TorchRunner, "onnxruntime": OrtRunner, "opencv": OpenCVRunner, "litert": LiteRTRunner}


def load(runtime: str, path: Path, threads: int = 1) -> Runner:
    """Open `path` in `runtime`; any failure to load is one EdgeDigitsError line."""
    __import__(RUNTIMES[runtime].module)  # ModuleNotFoundError -> the CLI names the package
    try:
        with quiet():
            return RUNNERS[runtime](path, threads)
    except EdgeDigitsError:
        raise
    except Exception as e:  # each engine has its own exception types for a bad file
        message = " ".join(str(e).split())[:200] or type(e).__name__
        raise EdgeDigitsError(f"{path}: {RUNTIMES[runtime].title} cannot load it ({message})") from None


def predict(runner: Runner, images: np.ndarray, batch: int = 100) -> np.ndarray:
    """Logits of many images, `batch` at a time."""
    return np.concatenate([runner.predict(images[i:i + batch]) for i in range(0, len(images), batch)])
