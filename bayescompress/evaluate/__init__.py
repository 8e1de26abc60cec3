"""Quality of a (decompressed) model on its task: word analogies for embeddings."""
