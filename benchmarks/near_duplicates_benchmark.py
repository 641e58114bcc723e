"""Near-duplicate search on 10,000 synthetic video hashes: the asset's exact search against
candidate generation with faiss-cpu binary indexes and a DuckDB self-join.

    PYTHONPATH=$PWD $VENV/bin/python benchmarks/near_duplicates_benchmark.py [--videos 10000]

Data: N videos x 3 frame hashes (64-bit, as video_hashes stores them), uniformly random
(unrelated videos), of which 5% are near-duplicates of an earlier video: every frame hash
with 0-6 bits flipped (similarity >= 0.9), in shuffled frame order. Ground truth = the
injected pairs.

Rows:
- exact (the asset): `choose_near_duplicates`, greedy over all N in one shard, every
  candidate against every kept video (numpy XOR + popcount).
- faiss IndexBinaryFlat / IndexBinaryHNSW: the k nearest frame hashes of each frame
  (Hamming), their videos become candidates, then the exact video similarity on those pairs
  only. Recall = injected pairs found at the threshold.
- DuckDB: frame hashes in a table, self-join on bit_count(a xor b) <= 12 (a pair at
  similarity >= 0.8 must have a frame pair within 12.8 bits), then the exact similarity.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curation_assets.scorers.video_hash import Candidate, choose_near_duplicates, video_similarity  # noqa: E402

THRESHOLD = 0.8


def make_hashes(n: int, dup_share: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 2**63, size=(n, 3), dtype=np.int64) * 2 + rng.integers(0, 2, size=(n, 3))
    truth = set()
    n_dup = int(n * dup_share)
    dups = rng.choice(np.arange(n // 10, n), size=n_dup, replace=False)
    originals = np.setdiff1d(np.arange(n), dups)
    for d in dups:
        src = int(rng.choice(originals[originals < d]))
        row = hashes[src].copy().view(np.uint64)
        for j in range(3):
            for bit in rng.choice(64, size=int(rng.integers(0, 7)), replace=False):
                row[j] ^= np.uint64(1) << np.uint64(int(bit))
        hashes[d] = rng.permutation(row.view(np.int64))
        truth.add((src, int(d)))
    return hashes, truth


def pairs_from_candidates(hashes, cand_pairs) -> set:
    found = set()
    for a, b in cand_pairs:
        if video_similarity(hashes[a].tolist(), hashes[b].tolist()) >= THRESHOLD:
            found.add((min(a, b), max(a, b)))
    return found


def recall(flagged: set, truth: set) -> float:
    """Share of the injected near-duplicates flagged (as a duplicate of any earlier video)."""
    return len({d for _, d in truth} & flagged) / len(truth)


def flagged_from_pairs(found: set) -> set:
    return {b for _, b in found}  # the later video of each near-duplicate pair


def faiss_candidates(index_factory, hashes, k: int):
    import faiss

    faiss.omp_set_num_threads(1)  # a shard step owns one core; threads only thrash on a shared machine
    codes = np.ascontiguousarray(hashes.reshape(-1)).view(np.uint8).reshape(-1, 8)
    owner = np.repeat(np.arange(len(hashes)), 3)
    index = index_factory(faiss)
    t0 = time.perf_counter()
    index.add(codes)
    _, nn = index.search(codes, k)
    cands = set()
    for q, row in enumerate(nn):
        a = owner[q]
        for i in row:
            if i >= 0 and owner[i] != a:
                cands.add((min(a, owner[i]), max(a, owner[i])))
    return cands, time.perf_counter() - t0


def duckdb_candidates(hashes):
    import duckdb
    import polars as pl

    frame = pl.DataFrame({"video": np.repeat(np.arange(len(hashes)), 3), "h": hashes.reshape(-1)})
    t0 = time.perf_counter()
    con = duckdb.connect()
    con.register("f", frame.to_arrow())
    rows = con.execute("select distinct a.video, b.video from f a join f b on a.video < b.video "
                       "and bit_count(xor(a.h, b.h)) <= 12").fetchall()
    return {(int(a), int(b)) for a, b in rows}, time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--videos", type=int, default=10_000)
    parser.add_argument("--dup-share", type=float, default=0.05)
    parser.add_argument("--skip-duckdb", action="store_true")
    args = parser.parse_args()
    hashes, truth = make_hashes(args.videos, args.dup_share)
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"{args.videos} videos x 3 frame hashes, {len(truth)} injected near-duplicates; "
          f"{os.cpu_count()} cores, load {load}\n")
    print("| method | seconds | candidate pairs | near-duplicate pairs (videos flagged) | recall | 1M videos (extrapolated) |")
    print("|---|---|---|---|---|---|")

    t0 = time.perf_counter()
    cands = [Candidate(str(i), hashes[i].tolist(), (i,)) for i in range(len(hashes))]
    matches = choose_near_duplicates(cands, [], THRESHOLD)
    exact_s = time.perf_counter() - t0
    exact = {int(m.video_id) for m in matches if m.near_duplicate_of}
    scale = (1_000_000 / args.videos) ** 2
    print(f"| exact greedy (the asset, numpy) | {exact_s:.2f} | all | {len(exact)} flagged | {recall(exact, truth):.4f} | "
          f"~{exact_s * scale / 3600:.0f} h (quadratic) |")

    for name, factory, k, growth in [
        ("faiss IndexBinaryFlat, k=8 per frame", lambda f: f.IndexBinaryFlat(64), 8, scale),
        ("faiss IndexBinaryHNSW(32), k=8 per frame", lambda f: f.IndexBinaryHNSW(64, 32), 8,
         (1_000_000 / args.videos) * np.log(1_000_000) / np.log(args.videos)),
    ]:
        cand, search_s = faiss_candidates(factory, hashes, k)
        t1 = time.perf_counter()
        found = pairs_from_candidates(hashes, cand)
        verify_s = time.perf_counter() - t1
        total = search_s + verify_s
        print(f"| {name} (+ exact check) | {total:.2f} (search {search_s:.2f}) | {len(cand)} | {len(found)} | "
              f"{recall(flagged_from_pairs(found), truth):.4f} | ~{total * growth / 60:.0f} min |")

    if not args.skip_duckdb:
        cand, search_s = duckdb_candidates(hashes)
        t1 = time.perf_counter()
        found = pairs_from_candidates(hashes, cand)
        total = search_s + time.perf_counter() - t1
        print(f"| DuckDB self-join bit_count(xor) <= 12 (+ exact check) | {total:.2f} | {len(cand)} | {len(found)} | "
              f"{recall(flagged_from_pairs(found), truth):.4f} | ~{total * scale / 3600:.0f} h (quadratic) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
