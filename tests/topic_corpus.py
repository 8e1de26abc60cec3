"""Tiny seeded corpora for the fitting tests: two topics whose words never share a line."""

from __future__ import annotations

from pathlib import Path

import numpy as np

TOPIC_SIZE = 12
TOPICS = (
    [f"q{chr(97 + i)}a" for i in range(TOPIC_SIZE)],  # topic A: qaa, qba, ...
    [f"z{chr(97 + i)}b" for i in range(TOPIC_SIZE)],  # topic B: zab, zbb, ...
)


def topic_lines(lines: int = 300, words_per_line: int = 40, seed: int = 0) -> list[str]:
    """Each line draws Zipf-distributed words from one topic; windows never cross lines."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, TOPIC_SIZE + 1)
    weights /= weights.sum()
    text = []
    for line in range(lines):
        topic = TOPICS[line % 2]
        text.append(" ".join(topic[i] for i in rng.choice(TOPIC_SIZE, words_per_line, p=weights)))
    return text


def write_topic_corpus(path: Path, lines: int = 300, seed: int = 0) -> Path:
    path.write_text("\n".join(topic_lines(lines, seed=seed)) + "\n", encoding="utf-8")
    return path
