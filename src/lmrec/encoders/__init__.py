"""Text encoders: HF models with pooling, resolved offline where packaged; embedding and layer caches."""
