"""Reports: Table 12 from evaluation runs, and the documents rendered from it."""
