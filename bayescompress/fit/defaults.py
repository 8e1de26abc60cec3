"""Default settings of the fitting commands, kept apart so the CLI can show them without torch.

Tuned on the demo corpus (gensim's English Wikipedia sample) for a fit of a few minutes on two
CPU cores; see docs/skipgram.md for how they were chosen.
"""

CORPUS_DEFAULTS = {
    "vocab_size": 10000,
    "min_count": 4,
    "window": 5,
    "lowercase": True,
    "min_token_length": 2,
    "max_token_length": 15,
}

SKIPGRAM_DEFAULTS = {
    "dim": 100,
    "negatives": 5,
    "steps": 2000,
    "batch": 1000,
    "lr": 0.05,
    "lr_decay": 1.0,
    "prior_std": 1.0,
    "init_std": 0.1,
    "init_scale": 0.01,
    "seed": 0,
    "checkpoint_every": 500,
}
