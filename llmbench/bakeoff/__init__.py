"""The bake-off: one command from prepared data to a report, run from a YAML config."""
