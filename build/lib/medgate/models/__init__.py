"""Models: the models.toml registry and model specs, fingerprints, the embedded default model,
tokenizers for prompt building, and the engines that serve a model (one module per backend)."""
