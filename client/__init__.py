"""Command-line client of the diffq API (needs only requests)."""
