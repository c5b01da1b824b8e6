"""Preparation: fetching upstream data, the shared upstream readers, prepared tables, and
the demo rows."""
