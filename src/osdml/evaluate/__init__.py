"""Evaluation: window and event metrics (and later the app's alarm replay and reports)."""
