"""N-way K-shot few-shot evaluation: random episodes drawn from a labelled set, scored in embedding space.

Omniglot's official runs fix one 20-way one-shot protocol on one data set. Episodes generalise it to
any labelled set and any number of ways and shots: each episode draws ``ways`` classes, ``shots``
support images and ``queries`` query images per class, and every query is classified among the
episode's classes alone. Averaging over many episodes (1000 is the usual count) gives a mean accuracy
with a confidence interval, the figure few-shot papers report.

Sampling is separate from scoring so that the same episodes can score several models or both
classification rules, and so that an impossible request fails before any image is embedded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypedDict

import numpy as np

from finegrain.errors import ConfigError, DataError

MODES = ("nearest", "prototype")


@dataclass(frozen=True)
class Episode:
    """One few-shot task; every array holds indices into (or class ids of) the sampled label array.

    Support and query arrays are class-major: entries ``c*shots:(c+1)*shots`` of ``support`` belong
    to the episode's c-th class, as do entries ``c*queries:(c+1)*queries`` of ``queries``.
    """

    support: np.ndarray  # [ways*shots] image indices
    support_classes: np.ndarray  # [ways*shots] class id of each support image (a value of ``labels``)
    queries: np.ndarray  # [ways*queries] image indices, none of them in ``support``
    answers: np.ndarray  # [ways*queries] the right class id of each query

    @property
    def ways(self) -> int:
        return len(np.unique(self.support_classes))


class EpisodeAccuracy(TypedDict):
    accuracy: float  # mean over episodes of the fraction of queries classified right
    ci95: float  # half-width of the 95% confidence interval of that mean
    episodes: int


def _at_least(value: int, minimum: int, name: str) -> None:
    if int(value) != value or value < minimum:
        raise ConfigError(f"--{name} must be a whole number of at least {minimum}, got {value}")


def sample_episodes(labels: np.ndarray, ways: int, shots: int, queries: int, episodes: int,
                    seed: int) -> list[Episode]:
    """Draw ``episodes`` random N-way K-shot tasks from images labelled ``labels`` (one label per image).

    The same labels and seed always give the same episodes (a numpy ``Generator``), so two models
    can be compared on identical tasks. In each episode the classes are distinct (drawn without
    replacement) and each class's support and query images are drawn together without
    replacement, so no image is both an example and a question: that would make the answer trivial.
    A class is eligible only when it has at least ``shots + queries`` images; a class with fewer
    could not fill its share of an episode without repeating images.
    """
    _at_least(ways, 2, "ways")  # one way is no choice at all: accuracy would always be 1
    _at_least(shots, 1, "shots")
    _at_least(queries, 1, "queries")
    _at_least(episodes, 1, "episodes")
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise DataError(f"labels must be one per image (a 1-D array), got shape {labels.shape}")
    classes, inverse = np.unique(labels, return_inverse=True)
    order = np.argsort(inverse, kind="stable")  # image indices grouped by class, in their original order
    members = np.split(order, np.cumsum(np.bincount(inverse, minlength=len(classes)))[:-1])
    needed = shots + queries
    eligible = np.array([c for c, m in enumerate(members) if len(m) >= needed], dtype=np.int64)
    if len(eligible) < ways:
        raise DataError(
            f"{ways}-way {shots}-shot episodes with {queries} quer{'y' if queries == 1 else 'ies'} per class need "
            f"{ways} classes with at least {needed} images each, but only {len(eligible)} of the "
            f"{len(classes)} classes have that many"
        )

    rng = np.random.default_rng(seed)
    result: list[Episode] = []
    for _ in range(episodes):
        chosen = rng.choice(eligible, size=ways, replace=False)
        picks = [rng.choice(members[c], size=needed, replace=False) for c in chosen]
        result.append(Episode(
            support=np.concatenate([p[:shots] for p in picks]),
            support_classes=np.repeat(classes[chosen], shots),
            queries=np.concatenate([p[shots:] for p in picks]),
            answers=np.repeat(classes[chosen], queries),
        ))
    return result


def episode_accuracy(embeddings: np.ndarray, episodes: Sequence[Episode],
                     mode: Literal["nearest", "prototype"] = "nearest") -> EpisodeAccuracy:
    """Mean accuracy over episodes, its 95% confidence interval and the episode count.

    ``embeddings`` are unit-length, one row per image, so a dot product is the cosine similarity.
    ``nearest`` answers each query with the class of its most similar support image (1-NN, the rule
    of the official Omniglot runs). ``prototype`` answers with the class whose prototype, the mean of
    its support embeddings re-normalised to unit length, is most similar (Snell et al.'s prototypical
    rule): with several shots it averages out an odd support image. With one shot the two agree.
    Ties go to the first class in the episode. The interval is 1.96·std/√episodes, with the standard
    deviation of the per-episode accuracies (numpy's default, ddof=0, as few-shot papers compute it).
    """
    if mode not in MODES:
        raise ConfigError(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
    if not episodes:
        raise DataError("no episodes to evaluate")
    embeddings = np.asarray(embeddings)
    scores = np.empty(len(episodes))
    for i, ep in enumerate(episodes):
        query = embeddings[ep.queries]
        if mode == "nearest":
            predicted = ep.support_classes[np.argmax(query @ embeddings[ep.support].T, axis=1)]
        else:
            # return_index keeps the episode's class order, so ties resolve as in "nearest".
            _, first, inverse = np.unique(ep.support_classes, return_index=True, return_inverse=True)
            rank = np.argsort(np.argsort(first))  # np.unique sorts classes; rank = position in the episode
            slot = rank[inverse.reshape(-1)]
            prototypes = np.zeros((len(first), embeddings.shape[1]), dtype=np.float64)
            np.add.at(prototypes, slot, embeddings[ep.support])
            prototypes /= np.maximum(np.linalg.norm(prototypes, axis=1, keepdims=True), 1e-12)
            in_order = ep.support_classes[np.sort(first)]
            predicted = in_order[np.argmax(query @ prototypes.T, axis=1)]
        scores[i] = np.mean(predicted == ep.answers)
    return {
        "accuracy": float(scores.mean()),
        "ci95": float(1.96 * scores.std() / np.sqrt(len(scores))),
        "episodes": len(scores),
    }
