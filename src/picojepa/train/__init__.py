"""pico-JEPA training: data, the video ViT, JEPA pre-training, linear probes, evaluation."""
