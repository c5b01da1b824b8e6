"""Training: rendering Ludwig configs, 4-bit LoRA training, sweeps, building local base models."""
