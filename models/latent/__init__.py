"""Latent-space statistics and geometry, torch-free: KL per dimension, activity, projections, paths."""
