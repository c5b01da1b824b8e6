"""Task cards, the base-model registry, prompts, token counts and the metrics a card names."""
