"""Load testing a serving endpoint with many adapters."""
