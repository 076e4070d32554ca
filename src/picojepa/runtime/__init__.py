"""pico-JEPA edge runtime: bundle + video -> prediction, on onnxruntime.

Imports stay light: numpy here, onnxruntime and torchcodec only inside the functions that need them.
Never imports `picojepa.train`, `picojepa.export` or `torch.nn` (tests/runtime/test_imports.py).
"""
