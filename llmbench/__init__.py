"""llmbench: the LoRA Land study as a declarative, reproducible toolkit on Ludwig."""

from llmbench.errors import LLMBenchError

__all__ = ["LLMBenchError"]
__version__ = "0.1.0"
