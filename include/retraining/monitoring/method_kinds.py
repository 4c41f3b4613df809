"""The names of the drift methods and the column kinds each accepts: declarations only, no imports.

The configuration validates method names against this table, so loading a config (and parsing the
DAG) never imports the statistics behind them (NumPy, pandas, SciPy). The computations live in
:mod:`.drift_methods`, whose registry a test keeps equal to this table.
"""

from __future__ import annotations

NUMERIC = "numeric"
CATEGORICAL = "categorical"
KINDS = frozenset({NUMERIC, CATEGORICAL})

METHOD_KINDS: dict[str, frozenset[str]] = {
    "ks": frozenset({NUMERIC}),
    "wasserstein": frozenset({NUMERIC}),
    "psi": frozenset({NUMERIC, CATEGORICAL}),
    "jensenshannon": frozenset({NUMERIC, CATEGORICAL}),
    "chisquare": frozenset({CATEGORICAL}),
    "linf": frozenset({CATEGORICAL}),
}


def kinds_of(name: str) -> frozenset[str]:
    """The column kinds method ``name`` accepts; an unknown name is an error listing the valid ones."""
    try:
        return METHOD_KINDS[name]
    except KeyError:
        raise ValueError(f"unknown drift method {name!r}; valid methods: {', '.join(sorted(METHOD_KINDS))}") from None
