"""pico-JEPA: tiny self-supervised video models, trained on a CPU and deployed as verified ONNX
ensembles. The rooms: `core` (the contracts), `train`, `export`, `runtime` (`live`, `net`) and
`benchmarks`; docs/architecture.md is the map."""
