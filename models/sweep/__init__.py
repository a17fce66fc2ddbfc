"""Sweeps: many runs differing in one or two settings, trained out of process (locally or on Ray)."""
