"""A self-contained HTML drift report: why the sensor decided there is drift, for a person to read.

:func:`render_html` turns the drift verdict the engine produces (the dict described below) into one
HTML document with no external CSS, JavaScript, fonts or images: the style sheet is inline and every
chart is an inline SVG. :func:`write_html` writes it to a file (to log it to MLflow as an artifact).
The report only shows the verdict; nothing in it feeds the decision.

The document has, in order: the title and the ``context`` lines (model, champion version, window,
run id...); the verdict (drift detected or not, the rule in words, the importance-weighted and
unweighted drifted shares, rows on each side, the largest PSI); the optional ``decision``
(decision, severity, confidence, reason); the features that drove the decision; a table of all
features; and one collapsible section per feature with a bar chart of the reference and current
shares per histogram bin (drifted features open).

Features are ordered drifted first, each group by importance x strength, where strength is how far
the statistic is past (or short of) its threshold: ``statistic / threshold`` for a distance and
``ln p / ln threshold`` for a p-value (the Benjamini-Hochberg adjusted one when present), so 1 is
exactly at the threshold in both cases. All text from the verdict is escaped with
:func:`html.escape` (feature names and categories are user data); numbers show 4 significant
digits, p-values below 1e-3 in scientific notation, and a missing or NaN value as ``n/a``.

Verdict keys (all JSON types): ``detected``, ``drifted_features``, ``drifted_share``,
``unweighted_share``, ``share_threshold``, ``importance_weighted``, ``fdr_q``, ``max_psi``,
``reference_rows``, ``current_rows`` and ``features``, a list of dicts with ``feature``, ``kind``,
``method``, ``kind_of_statistic`` (``p_value`` or ``distance``), ``statistic``, ``threshold``,
``p_adjusted``, ``drifted``, ``importance``, ``psi``, ``reference_mean``, ``current_mean``,
``missing_reference``, ``missing_current``, ``unseen_categories`` and ``histogram``
(``{"bins": [...], "reference": [...], "current": [...]}``, shares per bin). Missing keys are
shown as ``n/a`` rather than raising: a report of an older verdict is still a report.

Charts are drawn with matplotlib's object API on an Agg canvas (no pyplot, no display, the
process's backend untouched), 5 x 2.2 inches each, and released after use. A categorical histogram
with more than :data:`MAX_BINS` bins shows the :data:`MAX_BINS` bins with the largest share on
either side and one "other" bar for the rest.
"""

from __future__ import annotations

import html
import io
import logging
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["render_html", "write_html", "MAX_BINS"]

log = logging.getLogger(__name__)

FIGURE_SIZE = (5.0, 2.2)  # inches per chart
MAX_BINS = 20  # categorical bins drawn before the rest are pooled into "other"
MAX_NUMERIC_BINS = 60  # numeric bins keep their order; beyond this they are pooled too
MAX_LABEL = 18  # characters of a bin label on the chart (the full label is in the data)
MAX_UNSEEN = 10  # unseen categories listed per feature
REFERENCE_COLOR = "#4C78A8"
CURRENT_COLOR = "#F58518"
NA = "n/a"

_DECISION_KEYS = ("decision", "severity", "confidence", "reason")


def render_html(
    verdict: Mapping[str, Any],
    *,
    title: str,
    context: Mapping[str, str] | None = None,
    decision: Mapping[str, Any] | None = None,
) -> str:
    """The drift report of ``verdict`` as one self-contained HTML document."""
    features = [f for f in (verdict.get("features") or []) if isinstance(f, Mapping)]
    ordered = _ordered(features, verdict.get("drifted_features") or [])
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        "<header>",
        f"<h1>{_e(title)}</h1>",
        _context(context),
        "</header>",
        "<main>",
        _summary(verdict, features),
        _decision(decision),
        _drivers(ordered),
        _table(ordered),
        _distributions(ordered),
        "</main>",
        '<footer><p>Rendered from the drift verdict for reading only; the report does not feed the decision.'
        "</p></footer>",
        "</body>",
        "</html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"


def write_html(
    verdict: Mapping[str, Any],
    path: str | Path,
    *,
    title: str = "Drift report",
    context: Mapping[str, str] | None = None,
    decision: Mapping[str, Any] | None = None,
) -> Path:
    """Write :func:`render_html` of ``verdict`` to ``path`` (UTF-8, parent folders created); the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(verdict, title=title, context=context, decision=decision), encoding="utf-8")
    log.info("wrote the drift report to %s", out)
    return out


# --- sections -------------------------------------------------------------------------------------


def _context(context: Mapping[str, str] | None) -> str:
    """The header's facts; credentials in a value (a URI, a DSN) are masked, as the report is an artifact."""
    from ..redaction import redact

    if not context:
        return ""
    rows = "".join(f"<dt>{_e(k)}</dt><dd>{_e(redact(str(v)))}</dd>" for k, v in context.items())
    return f'<dl class="context">{rows}</dl>'


def _summary(verdict: Mapping[str, Any], features: list[Mapping[str, Any]]) -> str:
    detected = bool(verdict.get("detected"))
    weighted = bool(verdict.get("importance_weighted"))
    threshold = _num(verdict.get("share_threshold"))
    scored = "drift_score" in verdict
    if scored:
        rule = (
            f"Drift when the drift score (each drifted feature's {'importance' if weighted else 'share'} times its "
            f"strength, its statistic over its threshold, at most {_num(verdict.get('max_strength'))}) "
            f"&ge; {_num(verdict.get('score_threshold'))}"
        )
        if verdict.get("calibration_windows"):
            rule += (f"; thresholds calibrated on {_count(verdict.get('calibration_windows'))} windows of the "
                     "training period (a feature's threshold is raised to its natural variation)")
    else:
        rule = (
            f"Drift when the {'importance-weighted ' if weighted else ''}share of drifted features "
            f"&ge; {threshold}"
        )
    if _float(verdict.get("fdr_q")) is not None:
        rule += f"; p-value methods use Benjamini-Hochberg at q = {_num(verdict.get('fdr_q'))}"
    rule += (
        ". Per feature, a distance drifts at or above its threshold and a p-value is compared "
        "with its threshold after the adjustment."
    )
    n_drifted = sum(1 for f in features if f.get("drifted") is True)
    facts = [("Drift score", f"{_num(verdict.get('drift_score'))} (threshold {_num(verdict.get('score_threshold'))})")]
    facts = facts if scored else []
    facts += [
        ("Importance-weighted drifted share" if weighted else "Drifted share",
         f"{_num(verdict.get('drifted_share'))} (threshold {threshold})"),
        ("Unweighted drifted share",
         f"{_num(verdict.get('unweighted_share'))} ({n_drifted} of {len(features)} features)"),
        ("Rows", f"reference {_count(verdict.get('reference_rows'))}, current {_count(verdict.get('current_rows'))}"),
        ("Largest PSI", _num(verdict.get("max_psi"))),
    ]
    calibration = verdict.get("calibration") or {}
    if calibration.get("status"):
        facts.append(("Thresholds", _e(f"{calibration['status']}: {calibration.get('note') or ''}")))
    if verdict.get("unverifiable_features"):
        facts.append(("Unverifiable features", _e(", ".join(str(n) for n in verdict["unverifiable_features"]))))
    items = "".join(f"<dt>{_e(k)}</dt><dd>{v}</dd>" for k, v in facts)
    state, headline = ("drift", "Drift detected") if detected else ("nodrift", "No drift detected")
    return (
        f'<section class="verdict {state}" id="verdict">'
        f'<p class="headline">{headline}</p>'
        f'<p class="rule">{rule}</p>'
        f'<dl class="facts">{items}</dl>'
        "</section>"
    )


def _decision(decision: Mapping[str, Any] | None) -> str:
    if not decision:
        return ""
    keys = [k for k in _DECISION_KEYS if k in decision] + [k for k in decision if k not in _DECISION_KEYS]
    rows = "".join(f"<dt>{_e(k)}</dt><dd>{_value(decision[k])}</dd>" for k in keys)
    return f'<section class="decision" id="decision"><h2>Decision</h2><dl class="facts">{rows}</dl></section>'


def _drivers(ordered: list[Mapping[str, Any]]) -> str:
    drifted = [(i, f) for i, f in enumerate(ordered) if f.get("drifted") is True]
    if not drifted:
        return ""
    items = "".join(
        f'<li><a class="name" href="#f-{i}">{_e(f.get("feature"))}</a> '
        f'<span class="muted">{_e(f.get("method") or NA)} {_statistic(f)} vs threshold {_threshold(f)}, '
        f"importance {_num(f.get('importance'))}</span></li>"
        for i, f in drifted
    )
    return (
        '<section class="drivers" id="drivers"><h2>Features that drove the decision</h2>'
        '<p class="muted">Drifted features, by importance &times; strength (how far past the threshold).</p>'
        f"<ol>{items}</ol></section>"
    )


_COLUMNS = (
    "Feature", "Kind", "Method", "Statistic", "Threshold", "Adjusted p", "Drifted", "Importance", "PSI",
    "Reference mean", "Current mean", "Missing (ref)", "Missing (cur)", "Unseen categories",
)


def _table(ordered: list[Mapping[str, Any]]) -> str:
    head = "".join(f'<th scope="col">{c}</th>' for c in _COLUMNS)
    if not ordered:
        body = f'<tr><td colspan="{len(_COLUMNS)}" class="muted">No features were checked.</td></tr>'
    else:
        body = "".join(_row(i, f) for i, f in enumerate(ordered))
    return (
        '<section id="features"><h2>All features</h2>'
        '<p class="muted">Drifted features first, then the rest, each by importance &times; strength.</p>'
        f'<div class="scroll"><table class="features"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
        "</section>"
    )


def _row(index: int, f: Mapping[str, Any]) -> str:
    drifted = f.get("drifted") is True
    cells = [
        f'<th scope="row" class="name"><a href="#f-{index}">{_e(f.get("feature"))}</a></th>',
        f"<td>{_e(f.get('kind') or NA)}</td>",
        f"<td>{_e(f.get('method') or NA)}<br><span class=\"muted\">{_e(_statistic_kind(f))}</span></td>",
        f'<td class="num">{_statistic(f)}</td>',
        f'<td class="num">{_threshold(f)}</td>',
        f'<td class="num">{_log_p(f.get("p_adjusted"), f.get("log10_p_adjusted"))}</td>',
        f"<td>{_badge(drifted)}</td>",
        f'<td class="num">{_num(f.get("importance"))}</td>',
        f'<td class="num">{_num(f.get("psi"))}</td>',
        f'<td class="num">{_num(f.get("reference_mean"))}</td>',
        f'<td class="num">{_num(f.get("current_mean"))}</td>',
        f'<td class="num">{_pct(f.get("missing_reference"))}</td>',
        f'<td class="num">{_pct(f.get("missing_current"))}</td>',
        f'<td class="unseen">{_unseen(f.get("unseen_categories"))}</td>',
    ]
    return f'<tr class="{"drifted" if drifted else "stable"}">{"".join(cells)}</tr>'


def _distributions(ordered: list[Mapping[str, Any]]) -> str:
    if not ordered:
        return '<section id="distributions"><h2>Distributions</h2><p class="muted">No features were checked.</p></section>'
    blocks = []
    charts = _Charts()
    try:
        for i, f in enumerate(ordered):
            drifted = f.get("drifted") is True
            facts = [
                ("statistic", f"{_statistic(f)} ({_e(_statistic_kind(f))}), threshold {_threshold(f)}"),
                ("adjusted p", _log_p(f.get("p_adjusted"), f.get("log10_p_adjusted"))),
                ("importance", _num(f.get("importance"))),
                ("PSI", _num(f.get("psi"))),
                ("missing", f"{_pct(f.get('missing_reference'))} &rarr; {_pct(f.get('missing_current'))}"),
            ]
            if f.get("kind") != "categorical" or f.get("reference_mean") is not None:
                facts.append(("mean", f"{_num(f.get('reference_mean'))} &rarr; {_num(f.get('current_mean'))}"))
            if f.get("unseen_categories"):
                facts.append(("unseen categories", _unseen(f.get("unseen_categories"))))
            items = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
            blocks.append(
                f'<details id="f-{i}" class="feature {"drifted" if drifted else "stable"}"{" open" if drifted else ""}>'
                f'<summary>{_badge(drifted)} <span class="name">{_e(f.get("feature"))}</span> '
                f'<span class="muted">{_e(f.get("kind") or NA)} &middot; {_e(f.get("method") or NA)} {_statistic(f)}'
                f" (threshold {_threshold(f)})</span></summary>"
                f'<div class="body"><dl class="facts small">{items}</dl>{_chart(charts, f, i)}</div>'
                "</details>"
            )
    finally:
        charts.close()
    return (
        '<section id="distributions"><h2>Distributions</h2>'
        '<p class="muted">Share of rows per bin, reference against current. Drifted features are open.</p>'
        + "".join(blocks)
        + "</section>"
    )


# --- charts ---------------------------------------------------------------------------------------


def _chart(charts: _Charts, feature: Mapping[str, Any], index: int) -> str:
    name = str(feature.get("feature"))
    try:
        bins = _bins(feature.get("histogram"), categorical=feature.get("kind") == "categorical")
    except (TypeError, ValueError) as exc:
        log.warning("drift report: no chart for %r: %s", name, exc)
        return f'<p class="muted">No chart: {_e(exc)}</p>'
    if bins is None:
        return '<p class="muted">No histogram was recorded for this feature.</p>'
    svg = charts.svg(*bins, prefix=f"c{index}-")
    label = _e(f"Share of rows per bin of {name}: reference against current")
    svg = svg.replace("<svg ", f'<svg role="img" aria-label="{label}" ', 1)
    return f'<figure class="chart">{svg}</figure>'


def _bins(histogram: Any, *, categorical: bool) -> tuple[list[str], np.ndarray, np.ndarray] | None:
    """Bin labels and the two share vectors to draw, with the smaller bins pooled into "other" when there are many."""
    if not isinstance(histogram, Mapping) or not histogram.get("bins"):
        return None
    labels = [str(b) for b in histogram["bins"]]
    reference = _shares(histogram.get("reference"), len(labels), "reference")
    current = _shares(histogram.get("current"), len(labels), "current")
    limit = MAX_BINS if categorical else MAX_NUMERIC_BINS
    if len(labels) > limit:
        top = np.argsort(-np.maximum(reference, current), kind="stable")[:limit]
        if not categorical:
            top = np.sort(top)  # numeric bins keep their order
        rest = np.setdiff1d(np.arange(len(labels)), top)
        labels = [labels[i] for i in top] + [f"other ({len(rest)} bins)"]
        reference = np.append(reference[top], reference[rest].sum())
        current = np.append(current[top], current[rest].sum())
    return labels, reference, current


def _shares(values: Any, n: int, side: str) -> np.ndarray:
    if values is None:
        return np.zeros(n)
    shares = np.array([np.nan if v is None else v for v in values], dtype=float)
    if shares.shape != (n,):
        raise ValueError(f"histogram has {n} bins but {shares.size} {side} shares")
    return np.where(np.isfinite(shares), shares, 0.0)


class _Charts:
    """One small figure, redrawn for every feature: building axes and ticks costs more than drawing them.

    The two bar series are two polygon collections (two artists rather than one per bar), the
    legend is drawn once from proxy patches, and the margins are fixed (a layout engine costs
    more than the drawing), with room below for rotated labels.
    """

    def __init__(self) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.collections import PolyCollection
        from matplotlib.figure import Figure
        from matplotlib.patches import Patch
        from matplotlib.ticker import MaxNLocator

        self.fig = Figure(figsize=FIGURE_SIZE)
        FigureCanvasAgg(self.fig)
        ax = self.fig.add_subplot()
        self.reference = PolyCollection([], facecolors=REFERENCE_COLOR, linewidths=0)
        self.current = PolyCollection([], facecolors=CURRENT_COLOR, linewidths=0)
        ax.add_collection(self.reference)
        ax.add_collection(self.current)
        ax.tick_params(axis="x", length=2, pad=2)
        ax.tick_params(axis="y", labelsize=6.5, length=2, pad=2)
        ax.yaxis.set_major_locator(MaxNLocator(4))
        ax.set_ylabel("share", fontsize=7)
        ax.grid(axis="y", alpha=0.3, linewidth=0.5)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        handles = [Patch(color=REFERENCE_COLOR, label="reference"), Patch(color=CURRENT_COLOR, label="current")]
        ax.legend(handles=handles, fontsize=6.5, frameon=False, ncols=2, loc="lower right", bbox_to_anchor=(1.0, 1.0),
                  handlelength=1, borderaxespad=0.1)  # above the axes, never over a bar
        self.ax = ax

    def svg(self, labels: Sequence[str], reference: np.ndarray, current: np.ndarray, *, prefix: str) -> str:
        n = len(labels)
        x = np.arange(n, dtype=float)
        self.reference.set_verts(_rectangles(x - 0.4, reference))
        self.current.set_verts(_rectangles(x, current))
        shown = [_shorten(label) for label in labels]
        longest = max(len(s) for s in shown)
        rotate = n > 6 or longest * n > 60
        fontsize = 6.5 if n <= 24 else 5
        self.ax.set_xticks(x, shown, rotation=45 if rotate else 0, ha="right" if rotate else "center",
                           rotation_mode="anchor" if rotate else "default", fontsize=fontsize, parse_math=False)
        top = float(max(reference.max(initial=0.0), current.max(initial=0.0)))
        self.ax.set_ylim(0, top * 1.05 if top > 0 else 1.0)
        self.ax.set_xlim(-0.6, n - 0.4)
        bottom = min(0.6, 0.13 + (0.017 * longest * fontsize / 6.5 if rotate else 0.02))
        self.fig.subplots_adjust(left=0.13 if rotate else 0.1, right=0.99, top=0.88, bottom=bottom)
        return _svg(self.fig, prefix=prefix)

    def close(self) -> None:
        self.fig.clear()


def _rectangles(left: np.ndarray, heights: np.ndarray, width: float = 0.4) -> list[np.ndarray]:
    return [np.array([[x, 0.0], [x, h], [x + width, h], [x + width, 0.0]]) for x, h in zip(left, heights, strict=True)]


def _svg(fig: Figure, *, prefix: str) -> str:
    """``fig`` as an SVG element to inline in HTML: no XML prolog, metadata or namespace URLs, ids prefixed."""
    import matplotlib

    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "drift-report"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue().decode("utf-8")
    text = text[text.index("<svg"):]
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.DOTALL)
    text = re.sub(r'\s+xmlns(?::\w+)?="[^"]*"', "", text)  # an inline <svg> in HTML needs no namespaces
    text = re.sub(r'\bid="([^"]+)"', rf'id="{prefix}\1"', text)  # ids unique across the charts of the page
    text = re.sub(r"url\(#([^)]+)\)", rf"url(#{prefix}\1)", text)
    text = re.sub(r'href="#([^"]+)"', rf'href="#{prefix}\1"', text)
    return text.strip()


# --- ordering -------------------------------------------------------------------------------------


def _ordered(features: list[Mapping[str, Any]], drifted_features: Sequence[Any]) -> list[Mapping[str, Any]]:
    """Drifted features first, then the rest; each group by importance x strength, strongest first."""
    rank = {str(name): i for i, name in enumerate(drifted_features)}

    def key(f: Mapping[str, Any]) -> tuple[float, float, int, str]:
        strength = _strength(f)
        importance = _float(f.get("importance")) or 0.0
        return (-(importance * strength), -strength, rank.get(str(f.get("feature")), len(rank)), str(f.get("feature")))

    drifted = sorted((f for f in features if f.get("drifted") is True), key=key)
    rest = sorted((f for f in features if f.get("drifted") is not True), key=key)
    return drifted + rest


def _strength(f: Mapping[str, Any]) -> float:
    """How far the statistic is past its threshold: 1 at the threshold, more is stronger, 0 when unknown."""
    threshold = _float(f.get("threshold"))
    if threshold is None:
        return 0.0
    if f.get("kind_of_statistic") == "p_value":
        p = _float(f.get("p_adjusted"))
        p = _float(f.get("statistic")) if p is None else p
        if p is None or not 0 < threshold < 1:
            return 0.0
        return min(1e6, math.log(min(1.0, max(p, 1e-300))) / math.log(threshold))
    statistic = _float(f.get("statistic"))
    if statistic is None or threshold <= 0:
        return 0.0
    return min(1e6, max(0.0, statistic / threshold))


# --- formatting -----------------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _float(value: Any) -> float | None:
    """A finite or infinite float, or None for None, NaN, booleans and anything that is not a number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _num(value: Any) -> str:
    number = _float(value)
    if number is None:
        return NA
    if math.isinf(number):
        return "&infin;" if number > 0 else "&minus;&infin;"
    return f"{number:.4g}"


def _p(value: Any) -> str:
    number = _float(value)
    if number is None or math.isinf(number):
        return _num(value)
    if 0 < abs(number) < 1e-3:
        mantissa, exponent = f"{number:.3e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{exponent}"
    return f"{number:.4g}"


def _pct(value: Any) -> str:
    number = _float(value)
    if number is None or math.isinf(number):
        return _num(value)
    return f"{100 * number:.3g}%"


def _count(value: Any) -> str:
    number = _float(value)
    if number is None or math.isinf(number):
        return NA
    return f"{int(number):,}"


def _value(value: Any) -> str:
    """A decision value: numbers formatted, anything else escaped text (credentials masked: a typed reason
    may quote a URI)."""
    from ..redaction import redact

    if _float(value) is not None and not isinstance(value, str):
        return _num(value)
    return NA if value is None else _e(redact(str(value)))


def _statistic_kind(f: Mapping[str, Any]) -> str:
    kind = f.get("kind_of_statistic")
    return {"p_value": "p-value", "distance": "distance"}.get(str(kind), NA if kind is None else str(kind))


def _statistic(f: Mapping[str, Any]) -> str:
    if f.get("kind_of_statistic") != "p_value":
        return _num(f.get("statistic"))
    return _log_p(f.get("statistic"), f.get("log10_p"))


def _threshold(f: Mapping[str, Any]) -> str:
    if f.get("kind_of_statistic") == "p_value":
        value = _log_p(f.get("threshold"), f.get("log10_threshold"))
    else:
        value = _num(f.get("threshold"))
    return value + " (calibrated)" if f.get("threshold_source") == "calibrated" else value


def _log_p(value: Any, log10: Any) -> str:
    """A p-value, as ``1e-617`` from its log10 where the float underflowed to 0."""
    number, exponent = _float(value), _float(log10)
    if number == 0 and exponent is not None and math.isfinite(exponent):
        mantissa = 10 ** (exponent - math.floor(exponent))
        return f"{mantissa:.3g}e{int(math.floor(exponent))}"
    return _p(value)


def _badge(drifted: bool) -> str:
    return '<span class="badge drift">DRIFT</span>' if drifted else '<span class="badge ok">no</span>'


def _unseen(values: Any) -> str:
    if not values:
        return ""
    values = [str(v) for v in values]
    shown = ", ".join(_e(v) for v in values[:MAX_UNSEEN])
    return shown + (f' <span class="muted">+{len(values) - MAX_UNSEEN} more</span>' if len(values) > MAX_UNSEEN else "")


def _shorten(label: str) -> str:
    return label if len(label) <= MAX_LABEL else label[: MAX_LABEL - 1] + "\u2026"


_CSS = """
:root{--drift:#b42318;--drift-bg:#fef3f2;--ok:#067647;--ok-bg:#ecfdf3;--muted:#667085;--line:#d0d5dd}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#101828;
margin:0 auto;padding:16px 24px;max-width:1400px}
h1{font-size:22px;margin:0 0 8px;overflow-wrap:anywhere}h2{font-size:17px;margin:24px 0 6px}
.muted{color:var(--muted)}
dl.context,dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:6px 0}
dl dt{font-weight:600}dl dd{margin:0;overflow-wrap:anywhere}
dl.small{font-size:12px}
.verdict{border:1px solid var(--line);border-left:6px solid;border-radius:6px;padding:10px 16px;margin:12px 0}
.verdict.drift{border-left-color:var(--drift);background:var(--drift-bg)}
.verdict.nodrift{border-left-color:var(--ok);background:var(--ok-bg)}
.headline{font-size:20px;font-weight:700;margin:0 0 4px}
.verdict.drift .headline{color:var(--drift)}.verdict.nodrift .headline{color:var(--ok)}
.rule{margin:0 0 6px}
.decision{border:1px solid var(--line);border-radius:6px;padding:4px 16px 10px;margin:12px 0}
.decision h2{margin-top:8px}
.scroll{overflow-x:auto}
table.features{border-collapse:collapse;font-size:12.5px;width:100%}
table.features th,table.features td{border-bottom:1px solid var(--line);padding:4px 8px;text-align:left;
vertical-align:top}
table.features thead th{position:sticky;top:0;background:#f2f4f7;white-space:nowrap;cursor:default}
table.features thead th::after{content:" \\2195";color:var(--muted);font-size:10px}
table.features td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.features tr.drifted{background:var(--drift-bg)}
table.features tr.drifted th.name{border-left:4px solid var(--drift)}
.name{overflow-wrap:anywhere;word-break:break-word;max-width:28em;font-weight:600}
th.name a,a.name{color:inherit}
td.unseen{max-width:20em;overflow-wrap:anywhere}
.badge{display:inline-block;border-radius:4px;padding:0 6px;font-size:11px;font-weight:700}
.badge.drift{background:var(--drift);color:#fff}.badge.ok{background:#e4e7ec;color:#344054}
details.feature{border:1px solid var(--line);border-radius:6px;margin:6px 0;padding:4px 10px}
details.feature.drifted{border-left:4px solid var(--drift)}
details.feature summary{cursor:pointer;overflow-wrap:anywhere}
details.feature .body{display:flex;flex-wrap:wrap;gap:8px 24px;align-items:flex-start;padding:6px 0}
figure.chart{margin:0}figure.chart svg{max-width:100%;height:auto}
footer{margin-top:24px;font-size:12px;color:var(--muted)}
"""
