"""Latent-space statistics and geometry, torch-free: KL per dimension, activity, I(X;Z), discrete-likelihood units, projections, paths."""
