"""Metrics, statistics, claims, figures and reports from what training wrote; no TensorFlow."""
