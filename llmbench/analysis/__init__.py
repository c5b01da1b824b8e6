"""Analysis: dataset-complexity heuristics, their correlation with quality, and predictions."""
