"""Buckets per series against percentile error, for every latency-bucket resolution (histogram.py).

Why this exists
---------------
Each bucket is a series per (run, name, method) in the cluster's Prometheus; fewer buckets mean
coarser percentiles. This measures the trade-off without a run: it samples latencies from
lognormal distributions with a wide spread (medians 3 ms - 3 s, sigma 0.3 - 1.5), rounds them as
Locust does (stats.bucket_response_time), and compares Prometheus' histogram_quantile (linear
interpolation in the bucket, histogram.quantile_from_buckets) with Locust's own p95/p99
(calculate_response_time_percentile) and with the exact sample percentile of the unrounded
latencies. "beyond bound" counts answers further than histogram.error_bound_ms from the key at
Prometheus' rank (Locust's own percentile takes the next key when q*n ends exactly on a key's
last sample: a rank convention, not the buckets). The default and its table: README "Latency buckets".

Always exits 0 (a benchmark, not a test).

Usage: .venv/bin/python bench/bucket_resolution.py [--distributions 300] [--samples 20000]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics

from locust.stats import bucket_response_time, calculate_response_time_percentile

from locust_workers.histogram import (
    RESOLUTIONS,
    Resolution,
    bucket_bounds_ms,
    cumulative_counts,
    error_bound_ms,
    quantile_from_buckets,
)

# between the named resolutions, to show the curve
EXTRA = (Resolution(0.1, 1.0), Resolution(0.25, 1.0), Resolution(0.5, 1.0))
QUANTILES = (0.95, 0.99)
HEADER = (
    "| resolution | buckets per series | bound (worst case) | p95 vs Locust | p99 vs Locust"
    " | p95 vs exact | p99 vs exact | beyond bound |"
)


def sample(rng: random.Random, samples: int) -> tuple[list[float], dict[int, int]]:
    median_ms = math.exp(rng.uniform(math.log(3), math.log(3000)))
    sigma = rng.uniform(0.3, 1.5)
    raw = sorted(rng.lognormvariate(math.log(median_ms), sigma) for _ in range(samples))
    rounded: dict[int, int] = {}
    for ms in raw:
        key = bucket_response_time(ms)
        rounded[key] = rounded.get(key, 0) + 1
    return raw, rounded


def key_at_rank(rounded: dict[int, int], rank: float) -> int:
    """The smallest key with at least `rank` samples at or below it: Prometheus' rank, on Locust's
    keys. Locust's own picks the next key when rank falls exactly on a key's last sample."""
    seen = 0
    for key in sorted(rounded):
        seen += rounded[key]
        if seen >= rank:
            return key
    return max(rounded)


def errors(resolution: Resolution, cases: list[tuple[list[float], dict[int, int]]]) -> dict[str, list[float]]:
    bounds = bucket_bounds_ms(resolution)
    out: dict[str, list[float]] = {f"{kind}{q}": [] for kind in ("locust", "exact") for q in QUANTILES}
    out["beyond"] = []
    for raw, rounded in cases:
        total = len(raw)
        cumulative = cumulative_counts(rounded, bounds)
        for q in QUANTILES:
            ours = quantile_from_buckets(q, bounds, cumulative, total)
            locust = calculate_response_time_percentile(rounded, total, q)
            exact = raw[min(total - 1, math.ceil(q * total) - 1)]
            if locust > 0:
                out[f"locust{q}"].append(abs(ours - locust) / locust)
            out[f"exact{q}"].append(abs(ours - exact) / exact)
            at_rank = key_at_rank(rounded, q * total)
            out["beyond"].append(float(abs(ours - at_rank) > error_bound_ms(at_rank, resolution)))
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--distributions", type=int, default=300)
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    cases = [sample(rng, args.samples) for _ in range(args.distributions)]
    names = {resolution: name for name, resolution in RESOLUTIONS.items()}
    resolutions = sorted({*RESOLUTIONS.values(), *EXTRA})
    print(
        f"{args.distributions} lognormal distributions x {args.samples} samples; relative error median / max"
    )
    print(HEADER)
    print("|---|---|---|---|---|---|---|---|")
    for resolution in resolutions:
        found = errors(resolution, cases)
        buckets = len(bucket_bounds_ms(resolution)) + 1  # + le="+Inf"
        cells = [
            f"{100 * statistics.median(found[key]):.1f} % / {100 * max(found[key]):.1f} %"
            for key in ("locust0.95", "locust0.99", "exact0.95", "exact0.99")
        ]
        label = f"`{names[resolution]}`" if resolution in names else f"(tolerance {resolution.tolerance})"
        floor = f" or {resolution.floor_ms:g} ms" if resolution.floor_ms else ""
        bound = f"{100 * resolution.tolerance:.0f} %{floor}"
        print(f"| {label} | {buckets} | {bound} | {' | '.join(cells)} | {int(sum(found['beyond']))} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
