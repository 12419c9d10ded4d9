"""edgedigits.export: from a PyTorch checkpoint to ONNX and TFLite files, float32 and int8, with
proof that every file in every runtime behaves like the checkpoint.

Modules: formats.py (THE formats table), exporter.py (converters and checks), quantize.py
(calibration, ONNX and PT2E int8, float32 I/O for int8 TFLite), metadata.py (what each file
carries), runners.py (one file in one runtime -> logits), benchmark.py (the parity/speed table),
cli.py (`edgedigits export`, `benchmark`, `formats`), finetune.py (`edgedigits finetune`).
Importing this package imports nothing heavy; torch and the converters load inside the functions.
"""
