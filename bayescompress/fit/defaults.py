"""Default settings of the fitting commands, kept apart so the CLI can show them without torch.

Tuned on the demo corpus (gensim's English Wikipedia sample, 453k tokens) for a fit of one to two
minutes on two CPU cores; docs/skipgram.md says how. Larger corpora want a smaller window (5-10).
"""

CORPUS_DEFAULTS = {
    "vocab_size": 10000,
    "min_count": 4,
    "window": 20,
    "lowercase": True,
    "min_token_length": 2,
    "max_token_length": 15,
    "window_weights": "flat",  # "linear": word2vec's dynamic window, as expected counts
    "subsample_tokens": 0.0,  # word2vec's sample=t, tokens dropped before windows, as expected counts
}
WINDOW_WEIGHTS = ("flat", "linear")  # every offset counts 1 / word2vec's dynamic window in expectation

SKIPGRAM_DEFAULTS = {
    "dim": 100,
    "negatives": 10,
    "estimator": "auto",
    "dense_max_vocab": 30000,  # auto: dense blocks up to this vocabulary size (measured), sampled pairs above
    # per estimator; pairs: 0.5 passes over the flat n+ at V = 30k, window 5
    "steps": {"pairs": 24000, "dense": 2000},
    # pairs: positive pairs per step (measured at V = 30k: 2048 beat 4096 for the same pairs, 1024 equalled
    # 2048 at more CPU); dense: block side
    "batch": {"pairs": 2048, "dense": 1000},
    "noise_contexts": 256,  # measured at V = 30k: 4x the negatives of 64 for 1.3x the step, 2.6x the Hits@10
    "pair_power": 0.75,
    "stratified": False,
    "subsample": 0.0,  # word2vec's frequent-word threshold t, as expected counts; 0: every pair
    "lr": 0.05,
    # the last step's learning rate over the first, per estimator. pairs: measured at V = 30k, 48000
    # steps: 0.02 0.563 Hits@10, 0.01 0.561, 0.05 0.547, 0.2 0.418 (docs/skipgram.md)
    "lr_decay": {"pairs": 0.02, "dense": 0.05},
    "prior_std": 0.5,
    "init_std": 0.1,
    # the guide's initial stds, per estimator. pairs: 0.3 (measured at V = 100k: with 0.1 the rarely drawn
    # rows kept stds far below their posterior's, Spearman(log count, log std) -0.61; with 0.3, -0.92)
    "init_scale": {"pairs": 0.3, "dense": 0.1},
    "seed": 0,
    "checkpoint_every": 500,
}
