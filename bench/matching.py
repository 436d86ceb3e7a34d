"""Precision and recall of ``pipeline.matching`` on the labelled corpus, at the accept threshold.

``python -m bench.matching [--short]``: scores every pair of ``tests/data/matching_corpus.csv``
(real names: Beatport chart entries, the way other stores spell them, other versions of them,
public tracklists; see ``tests/data/make_matching_corpus.py``) with ``match_confidence`` and
counts a pair as matched when it scores at least ``ACCEPT_THRESHOLD`` (the lowest score any
caller accepts: ``best_match`` returns nothing under it). Prints every false match and every
missed match, a table per group, then the JSON line: value = recall, baseline = 1.0 (a perfect
matcher), ratio = recall; ``precision`` and ``false_matches`` ride along. Targets (issue 14):
zero false matches, recall >= 0.98. The corpus is small (under a second), so ``--short`` runs
it whole too; the flag exists because CI passes it to every bench.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import Counter
from pathlib import Path

from pipeline.matching import ACCEPT_THRESHOLD, Candidate, TrackQuery, match_confidence

__all__ = ["CORPUS", "load_corpus", "main", "score_corpus"]

CORPUS = Path(__file__).parents[1] / "tests" / "data" / "matching_corpus.csv"


def load_corpus(path: Path = CORPUS) -> list[dict[str, str]]:
    """The corpus rows (``#`` lines are comments)."""
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(line for line in handle if not line.startswith("#")))


def score_corpus(rows: list[dict[str, str]]) -> list[tuple[dict[str, str], float]]:
    """Every pair with its match confidence (query side = the scraped name)."""
    return [
        (
            row,
            match_confidence(
                TrackQuery(row["query_artist"], row["query_title"]),
                Candidate(row["candidate_artist"], row["candidate_title"]),
            ),
        )
        for row in rows
    ]


def _line(row: dict[str, str], score: float) -> str:
    return (
        f"  {score:.3f} [{row['group']}] {row['query_artist']} - {row['query_title']}  <->  "
        f"{row['candidate_artist']} - {row['candidate_title']}  ({row['note']})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="accepted for CI; same corpus")
    parser.parse_args()
    scored = score_corpus(load_corpus())
    tp = fp = fn = tn = 0
    per_group: Counter[tuple[str, str]] = Counter()
    false_matches, missed = [], []
    for row, score in scored:
        same, matched = row["same"] == "1", score >= ACCEPT_THRESHOLD
        per_group[(row["group"], "pairs")] += 1
        if matched and same:
            tp += 1
        elif matched:
            fp += 1
            false_matches.append(_line(row, score))
        elif same:
            fn += 1
            missed.append(_line(row, score))
        else:
            tn += 1
        per_group[(row["group"], "right")] += matched == same
    print(f"{len(scored)} pairs ({tp + fn} same, {fp + tn} different)")
    print(f"accept threshold {ACCEPT_THRESHOLD}")
    for group in sorted({g for g, _ in per_group}):
        print(f"  {group:<20} {per_group[(group, 'right')]:>4}/{per_group[(group, 'pairs')]} right")
    print(f"false matches: {fp}")
    print("\n".join(false_matches))
    print(f"missed matches: {fn}")
    print("\n".join(missed))
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    result = {
        "bench": "matching",
        "value": round(recall, 4),
        "unit": "recall",
        "baseline": 1.0,
        "ratio": round(recall, 4),
        "precision": round(precision, 4),
        "false_matches": fp,
        "missed": fn,
        "pairs": len(scored),
        "threshold": ACCEPT_THRESHOLD,
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
