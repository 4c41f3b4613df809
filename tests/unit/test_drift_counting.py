"""The fast counting paths of a window summary give exactly the answers of the plain computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from include.retraining.monitoring import drift


def searchsorted_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    present = values[~np.isnan(values)]
    return np.bincount(np.searchsorted(edges, present, side="left"), minlength=edges.size + 1)


def probes(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The values plus every edge, its neighbours by one ulp, NaN and the infinities, shuffled."""
    near = [edges, np.nextafter(edges, np.inf), np.nextafter(edges, -np.inf)]
    extra = np.concatenate([*near, *near, [np.nan] * 7, [np.inf] * 3, [-np.inf] * 2, [1e308, -1e308]])
    out = np.concatenate([values, extra])
    np.random.default_rng(0).shuffle(out)
    return out


def edge_sets(rng: np.random.Generator) -> list[np.ndarray]:
    normal = rng.normal(50, 10, 20_000)
    quantiles = np.unique(np.quantile(normal, np.linspace(0, 1, 101)[1:-1]))
    outer = [np.nextafter(normal.min(), -np.inf), normal.max()]
    return [
        np.unique(np.concatenate([quantiles, outer])),  # a version-3 profile's fine edges
        np.unique(np.concatenate([quantiles, np.nextafter(quantiles[::10], np.inf)])),  # pairs one ulp apart
        np.concatenate([[-1e-300, 0.0], np.arange(1.0, 40.0)]),  # discrete: every value an edge
        np.concatenate([np.linspace(0, 1e-9, 12), [1000.0]]),  # many edges in the lowest cells (NaN's cell)
        np.concatenate([[-5.0], np.linspace(10, 10 + 1e-9, 30), [20.0]]),  # a crowded cell in the middle
        np.array([1e15, 1e15 + 0.25, 1e15 + 2]),  # an extreme range: plain binary search
        np.array([-3.0, 7.5]),
    ]


@pytest.mark.parametrize("size", [5000, 100_000])
def test_bin_counts_are_the_binary_search_counts(size: int) -> None:
    rng = np.random.default_rng(21)
    for edges in edge_sets(rng):
        span = edges[-1] - edges[0]
        values = np.concatenate([
            rng.uniform(edges[0] - span / 10, edges[-1] + span / 10, size),
            rng.choice(edges, size // 5),  # values equal to edges belong to the lower bin
            rng.normal(edges[len(edges) // 2], span / 50 + 1e-12, size // 5),
        ])
        values = probes(values, edges)
        nan = int(np.isnan(values).sum())
        expected = searchsorted_counts(values, edges)
        assert np.array_equal(drift.bin_counts(values, edges), expected), edges[:4]
        assert np.array_equal(drift.bin_counts(values, list(edges), nan), expected)
        counts, missing = drift.numeric_histogram(values, edges)
        assert (counts, missing) == (expected.tolist(), nan)


def reference_summary(values: np.ndarray, edges: list[float], lo: float, hi: float) -> dict:
    """The window summary of one numeric column as computed before the fast path (the plain way)."""
    finite = values[np.isfinite(values)]
    low, high = finite[finite <= edges[0]], finite[finite > edges[-1]]
    return {
        "counts": searchsorted_counts(values, np.asarray(edges)).tolist(),
        "missing": int(np.isnan(values).sum()),
        "mean": float(finite.mean()) if finite.size else None,
        "std": float(finite.std(ddof=1)) if finite.size > 1 else None,
        "min": float(finite.min()) if finite.size else None,
        "max": float(finite.max()) if finite.size else None,
        "tail_means": [float(low.mean()) if low.size else None, float(high.mean()) if high.size else None],
        "out_of_range": int(np.count_nonzero((values < lo) | (values > hi))),
        "infinite": int(np.isinf(values).sum()),
    }


def test_numeric_summary_is_the_plain_computation() -> None:
    rng = np.random.default_rng(22)
    ref = rng.lognormal(1, 0.6, 50_000)
    profile = drift.build_profile(pd.DataFrame({"x": ref}), ["x"], [])["numeric"]["x"]
    edges, lo, hi = profile["fine_edges"], profile["min"], profile["max"]
    base = rng.lognormal(1.1, 0.6, 60_000)
    cases = {
        "clean": base,
        "nan": np.where(rng.random(base.size) < 0.01, np.nan, base),
        "infinities": np.concatenate([base, [np.inf, -np.inf, np.inf, np.nan]]),
        "edge values": np.concatenate([base, [lo, hi, np.nextafter(lo, -np.inf), np.nextafter(hi, np.inf)] * 5]),
        "out of range only": np.full(5000, hi * 10),
        "all missing": np.full(5000, np.nan),
        "only infinities": np.array([np.inf, -np.inf] * 3000),
    }
    for name, values in cases.items():
        got = drift.numeric_summary(values, edges, lo, hi)
        expected = reference_summary(values, edges, lo, hi)
        assert got == expected, name
    # without the reference's range there is no out-of-range count; a profile older than version 3 counts directly
    assert drift.numeric_summary(base, edges, None, None)["out_of_range"] is None
    old_edges = profile["edges"]
    got = drift.numeric_summary(cases["infinities"], old_edges, lo, hi)
    assert got["out_of_range"] == reference_summary(cases["infinities"], old_edges, lo, hi)["out_of_range"]


def test_categories_from_codes_are_the_counts_of_the_values() -> None:
    rng = np.random.default_rng(23)
    labels = np.array(["b", "a", "c", "unused"], dtype=object)
    codes = rng.integers(0, 3, 20_000)
    values = labels[codes].copy()
    values[rng.random(values.size) < 0.05] = None
    plain = drift._categorical_counts(pd.Series(values, dtype=object))
    categorical = pd.Series(pd.Categorical(values, categories=labels))
    assert drift._categorical_counts(categorical) == plain
    assert "unused" not in plain[0]
    # integer codes as a source sends them: -1 is missing; 1 and "1" are one category, as for the values
    assert drift.categorical_counts_from_codes(np.array([0, 1, -1, 1, 2], dtype=np.int8), [1, "1", "x"]) == (
        {"1": 3, "x": 1}, 1)
    with pytest.raises(ValueError, match="code is 5, but there are only 3 categories"):
        drift.categorical_counts_from_codes(np.array([5]), ["a", "b", "c"])


def test_arrow_dictionary_columns_are_counted_on_their_indices() -> None:
    import pyarrow as pa

    chunks = [pa.array(["x", "y", None, "x"]).dictionary_encode(), pa.array(["z", "x", None]).dictionary_encode()]
    column = pd.Series(pd.arrays.ArrowExtensionArray(pa.chunked_array(chunks)))
    assert drift._categorical_counts(column) == ({"x": 3, "y": 1, "z": 1}, 2)
    plain = drift._categorical_counts(pd.Series(["x", "y", None, "x", "z", "x", None], dtype=object))
    assert sorted(drift._categorical_counts(column)[0].items()) == sorted(plain[0].items())


def test_a_window_of_categoricals_summarizes_as_its_strings() -> None:
    rng = np.random.default_rng(24)
    frame = pd.DataFrame({"x": rng.normal(size=8000),
                          "c": rng.choice(np.array(["p", "q", "r"], dtype=object), 8000)})
    profile = drift.build_profile(frame, ["x"], ["c"])
    as_codes = frame.assign(c=frame["c"].astype("category"))
    assert drift.summarize(as_codes, profile) == drift.summarize(frame, profile)


def test_the_p_value_functions_are_scipys_distributions() -> None:
    """binned_ks and chisquare_from_counts call scipy.special directly: the distributions' own sf, bit for bit."""
    from scipy import special, stats

    points = np.concatenate([[0.0, 1e-9, 0.5, 1.0, 3.0, 40.0], np.random.default_rng(25).uniform(0, 3, 200)])
    assert [special.kolmogorov(x) for x in points] == [stats.kstwobign.sf(x) for x in points]
    for df in (1, 2, 7, 29):
        assert [special.chdtrc(df, x) for x in points * 20] == [stats.chi2.sf(x, df) for x in points * 20]
    d, p = drift.binned_ks([5000.0] * 40, [4990.0] * 20 + [5010.0] * 20)  # 100 000 effective rows: the limit
    assert p == stats.kstwobign.sf(d * np.sqrt(100_000))


def test_missing_values_of_every_kind_are_counted_apart() -> None:
    values = pd.Series(["a", None, np.nan, "b", pd.NA, pd.NaT, "a", 1, "1", float("nan"), 2.5], dtype=object)
    counts, missing = drift._categorical_counts(values)
    plain = values.value_counts(dropna=True, sort=False)
    assert missing == len(values) - int(plain.sum()) == 5
    assert counts == {"a": 2, "b": 1, "1": 2, "2.5": 1}
    assert list(counts) == list(dict.fromkeys(str(k) for k in plain.index))  # first-seen order, as before



def test_cells_with_two_edges_are_counted_exactly_however_full() -> None:
    """Two edges in one cell (a profile's nextafter(min) beside min, a decile an ulp from a percentile):
    recounted while few values fall there, compared with both edges once many do (mid-column too)."""
    rng = np.random.default_rng(27)
    low = float(np.nextafter(0.0, -np.inf))
    binary = np.array([low, 0.0, 1.0])
    pair = np.unique(np.concatenate([np.linspace(-5, 5, 40), [np.nextafter(1.0, np.inf)]]))
    columns = [
        (rng.integers(0, 2, 300_000).astype(float), binary),  # half the values on the pair's upper edge
        (np.concatenate([rng.normal(0, 2, 150_000), np.full(150_000, 1.0)]), pair),  # the pair fills up late
        (np.concatenate([rng.normal(0, 2, 150_000), [1.0, np.nextafter(1.0, np.inf), np.nan] * 30]), pair),
    ]
    for values, edges in columns:
        assert np.array_equal(drift.bin_counts(values, edges), searchsorted_counts(values, edges))
