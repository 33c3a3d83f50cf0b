"""The monitoring context: health, readiness and metrics."""
