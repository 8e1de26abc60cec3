"""Where posteriors come from: fitting models with Pyro, or reading fits done elsewhere (torch + pyro).

``corpus`` turns text into co-occurrence counts and ``skipgram`` fits Bayesian word embeddings to
them; ``bnn`` fits Bayesian MLPs; ``distributed`` lets ``torchrun`` split a fit over processes.
"""
