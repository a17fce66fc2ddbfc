"""Neural networks and objectives: the VAE, its likelihoods, the ELBO terms, warm-up, free bits, IWAE."""
