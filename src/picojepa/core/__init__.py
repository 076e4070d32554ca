"""The contracts every room shares: typed errors, the CLIs' exit codes and one-line messages,
readers of the files a user hands us, output folders written aside, credential masking.

`core` imports nothing of `train`, `export`, `runtime` or `benchmarks`, and no torch; everything
else may import it (tests/runtime/test_imports.py)."""
