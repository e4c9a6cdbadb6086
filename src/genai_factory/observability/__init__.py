"""Logging, metrics, tracing and monitors."""
