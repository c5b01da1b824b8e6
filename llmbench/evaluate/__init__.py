"""Evaluation: endpoint clients, the harness that scores a model on a task, response checks."""
