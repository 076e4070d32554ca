"""pico-JEPA export: training checkpoints -> a verified, self-describing ONNX bundle.

`export_bundle(run_dir, out)` is the library function behind `picojepa-export`.
"""
