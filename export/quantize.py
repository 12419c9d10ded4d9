"""Post-training int8 quantization, calibrated on MNIST *training* digits (never test digits).

- ONNX: onnxruntime `quant_pre_process` then `quantize_static`, QDQ format, signed int8 weights and
  activations (S8S8, the recommended default), per-channel weights, MinMax calibration.
- TFLite: PT2E (torchao `prepare_pt2e`/`convert_pt2e`) with litert-torch's quantizer, then
  `litert_torch.convert`. litert-torch gives no control over the I/O type and folds the first
  quantize/last dequantize into int8 I/O; `float_io` puts float32 I/O back (QUANTIZE and
  DEQUANTIZE ops), so every .tflite here has the same contract for app developers.
"""

from pathlib import Path

import numpy as np

CALIBRATION_DIGITS = 2000
CALIBRATION_SEED = 0


def calibration_images(train_images: np.ndarray, n: int = CALIBRATION_DIGITS,
                       seed: int = CALIBRATION_SEED, marks: int = 0) -> np.ndarray:
    """A seeded random sample of n training digits, float32 [n, 28, 28] in [0, 1], and for a model
    with a "none" class `marks` synthetic non-digit marks after them (so that the int8 ranges
    cover what that class sees)."""
    index = np.random.default_rng(seed).choice(len(train_images), size=n, replace=False)
    images = train_images[np.sort(index)]
    if marks:
        from edgedigits.train.train import make_marks

        images = np.concatenate([images, make_marks(marks, seed)])
    return images.astype(np.float32) / 255.0


MARKS = 500            # synthetic "none" marks added to the calibration of an 11-class model


def describe(n: int) -> str:
    if n > CALIBRATION_DIGITS:
        return (f"{CALIBRATION_DIGITS} MNIST training digits and {n - CALIBRATION_DIGITS} synthetic "
                f"non-digit marks (seed {CALIBRATION_SEED})")
    return f"{n} MNIST training digits (seed {CALIBRATION_SEED})"


# ---------------------------------------------------------------------------------------- ONNX

def head_nodes(model) -> list:
    """Names of the Gemm nodes that produce a graph output (the classifier head).

    They stay float: OpenCV dnn 4.x misreads a quantized QDQ Gemm (about 1 in 5 argmaxes change),
    and the head holds under 1% of the weights, so the file barely grows."""
    outputs = {o.name for o in model.graph.output}
    return [n.name for n in model.graph.node if n.op_type == "Gemm" and set(n.output) & outputs]


def quantize_onnx(float_onnx: Path, out: Path, calib: np.ndarray, batch: int = 50) -> Path:
    """Static QDQ int8 quantization of a float ONNX model; returns `out`."""
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                          QuantType, quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self, name):
            self.batches = iter([{name: calib[i:i + batch, None]} for i in range(0, len(calib), batch)])

        def get_next(self):
            return next(self.batches, None)

    pre = out.with_name(out.stem + ".pre.onnx")
    quant_pre_process(str(float_onnx), str(pre))
    model = onnx.load(str(pre))
    quantize_static(str(pre), str(out), Reader(model.graph.input[0].name), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, per_channel=True,
                    calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=head_nodes(model))
    pre.unlink()
    return out


# -------------------------------------------------------------------------------------- TFLite

def quantize_pt2e(module, calib_nhwc, batch: int = 100):
    """PT2E post-training quantization of an NHWC module taking `image=`; returns (quantized
    graph, quantizer). The graph is captured with a dynamic batch so calibration runs 100 digits
    at a time (litert-torch later traces it again at batch 1)."""
    import torch
    from litert_torch.quantize import pt2e_quantizer as pq
    from torchao.quantization.pt2e import move_exported_model_to_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    x = torch.from_numpy(calib_nhwc)
    dim = torch.export.Dim("batch", min=1, max=4096)
    graph = torch.export.export(module, (), {"image": x[:2]}, dynamic_shapes={"image": {0: dim}}).module()
    quantizer = pq.PT2EQuantizer().set_global(pq.get_symmetric_quantization_config(is_per_channel=True))
    graph = prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for i in range(0, len(x), batch):
            graph(image=x[i:i + batch])
    graph = convert_pt2e(graph, fold_quantize=False)
    move_exported_model_to_eval(graph)
    graph.training = False  # exported graphs refuse .eval(); the flag only silences a warning
    return graph, quantizer


def _opcode(model, builtin: int) -> int:
    from ai_edge_litert import schema_py_generated as schema

    for i, code in enumerate(model.operatorCodes):
        if max(code.builtinCode, code.deprecatedBuiltinCode) == builtin:
            return i
    code = schema.OperatorCodeT()
    code.builtinCode, code.deprecatedBuiltinCode = builtin, min(builtin, 127)
    code.version = 2 if builtin == schema.BuiltinOperator.DEQUANTIZE else 1  # v2: int8 input
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def _float_twin(model, graph, index: int) -> int:
    """A new float32 tensor shaped like tensor `index`; it takes over its name."""
    from ai_edge_litert import schema_py_generated as schema

    quantized = graph.tensors[index]
    tensor = schema.TensorT()
    tensor.shape, tensor.shapeSignature = list(quantized.shape), quantized.shapeSignature
    tensor.type, tensor.name = schema.TensorType.FLOAT32, quantized.name
    quantized.name = quantized.name + b"_int8"
    model.buffers.append(schema.BufferT())
    tensor.buffer = len(model.buffers) - 1
    graph.tensors.append(tensor)
    return len(graph.tensors) - 1


def float_io(tflite: bytes) -> bytes:
    """Give an int8-I/O .tflite float32 inputs and outputs: a QUANTIZE op in front, a DEQUANTIZE
    op at the end (the layout TFLite's own converter makes by default). Integer internals stay."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(tflite))
    graph = model.subgraphs[0]
    integer = (schema.TensorType.INT8, schema.TensorType.UINT8)
    renamed = {}
    for pos, index in enumerate(list(graph.inputs)):
        if graph.tensors[index].type in integer:
            op = schema.OperatorT()
            op.opcodeIndex = _opcode(model, schema.BuiltinOperator.QUANTIZE)
            op.inputs, op.outputs = [_float_twin(model, graph, index)], [index]
            graph.operators.insert(0, op)
            graph.inputs[pos] = renamed[index] = op.inputs[0]
    for pos, index in enumerate(list(graph.outputs)):
        if graph.tensors[index].type in integer:
            op = schema.OperatorT()
            op.opcodeIndex = _opcode(model, schema.BuiltinOperator.DEQUANTIZE)
            op.inputs, op.outputs = [index], [_float_twin(model, graph, index)]
            graph.operators.append(op)
            graph.outputs[pos] = renamed[index] = op.outputs[0]
    for signature in model.signatureDefs or []:
        for item in list(signature.inputs or []) + list(signature.outputs or []):
            item.tensorIndex = renamed.get(item.tensorIndex, item.tensorIndex)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


# ------------------------------------------------------------------------------------ checking

def int8_weight_fraction(path: Path) -> float:
    """Share of weight values (constant tensors of rank >= 2) stored as int8 in a .onnx or .tflite
    file: ~1.0 for a real int8 model, 0.0 for a float model, whatever its name says."""
    path = Path(path)
    counts = {"int8": 0, "float": 0}
    if path.suffix == ".onnx":
        import onnx

        for init in onnx.load(str(path)).graph.initializer:
            if len(init.dims) >= 2:
                kind = {onnx.TensorProto.INT8: "int8", onnx.TensorProto.UINT8: "int8",
                        onnx.TensorProto.FLOAT: "float"}.get(init.data_type)
                if kind:
                    counts[kind] += int(np.prod(init.dims))
    else:
        from ai_edge_litert import schema_py_generated as schema
        from ai_edge_litert.tools import flatbuffer_utils

        model = flatbuffer_utils.read_model_from_bytearray(bytearray(path.read_bytes()))
        kinds = {schema.TensorType.INT8: "int8", schema.TensorType.UINT8: "int8",
                 schema.TensorType.FLOAT32: "float"}
        for graph in model.subgraphs:
            for tensor in graph.tensors:
                data = model.buffers[tensor.buffer].data if tensor.buffer < len(model.buffers) else None
                shape = list(tensor.shape) if tensor.shape is not None else []
                if data is not None and len(data) and len(shape) >= 2 and tensor.type in kinds:
                    counts[kinds[tensor.type]] += int(np.prod(shape))
    total = counts["int8"] + counts["float"]
    return counts["int8"] / total if total else 0.0
