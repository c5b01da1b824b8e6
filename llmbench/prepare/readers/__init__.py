"""Readers of upstream data, shared by the task folders' preparation code.

- `formats`: file formats (JSONL, CSV/TSV, CoNLL token blocks, gzip, encodings) and the
  layout of a locally copied Hugging Face dataset, one file per split;
- `glue`: the GLUE tasks' labels and rows, from the Hugging Face export or GLUE's TSV folders;
- `choices`: multiple-choice rows (lettered options, HellaSwag's contexts and endings);
- `ner`: named-entity rows, BIO spans and the one JSON target every NER task uses;
- `generation`: meaning-representation/reference pairs (e2e_nlg, viggo) and TLDR news items.

A task folder imports what it needs from here, never from another task's folder.
"""
