"""Quality of a (decompressed) model on its task: word analogies for embeddings, accuracy and NLL
for Bayesian networks (torch lives here)."""
