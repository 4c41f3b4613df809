"""The HTML drift report: well-formed, self-contained, escaped, ordered, one chart per feature, and fast."""

from __future__ import annotations

import html
import re
import time
from html.parser import HTMLParser
from typing import Any

import pytest

from include.retraining.monitoring.drift_report import render_html, write_html

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
EVIL = "<script>alert(1)</script>"


class Document(HTMLParser):
    """Checks that every element is closed in order, and collects tags, ids and the text of marked elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[str] = []
        self.ids: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.row_names: list[str] = []  # feature names of the table rows, in order
        self.summary_names: list[str] = []  # feature names of the per-feature sections, in order
        self.rule = ""
        self.title = ""
        self._capture: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._element(tag, attrs)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._element(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
            return
        self.stack.pop()
        if self._capture and tag in ("th", "span", "p", "title"):
            self._capture = None

    def handle_data(self, data: str) -> None:
        if self._capture == "row":
            self.row_names[-1] += data
        elif self._capture == "summary":
            self.summary_names[-1] += data
        elif self._capture == "rule":
            self.rule += data
        elif self._capture == "title":
            self.title += data

    def _element(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)
        found = dict(attrs)
        if "id" in found:
            self.ids.append(str(found["id"]))
        classes = (found.get("class") or "").split()
        if tag == "th" and found.get("scope") == "row":
            self._capture = "row"
            self.row_names.append("")
        elif tag == "span" and "name" in classes and "summary" in self.stack:
            self._capture = "summary"
            self.summary_names.append("")
        elif tag == "p" and "rule" in classes:
            self._capture = "rule"
        elif tag == "title" and "svg" not in self.stack:
            self._capture = "title"


def parse(text: str) -> Document:
    doc = Document()
    doc.feed(text)
    doc.close()
    assert doc.errors == [], doc.errors[:5]
    assert doc.stack == [], f"unclosed elements: {doc.stack}"
    return doc


def feature(name: str, **extra: Any) -> dict[str, Any]:
    """A numeric feature on four bins with a Wasserstein distance below its threshold."""
    base: dict[str, Any] = {
        "feature": name,
        "kind": "numeric",
        "method": "wasserstein",
        "kind_of_statistic": "distance",
        "statistic": 0.02,
        "threshold": 0.1,
        "p_adjusted": None,
        "drifted": False,
        "importance": 0.1,
        "psi": 0.01,
        "reference_mean": 1.5,
        "current_mean": 1.52,
        "missing_reference": 0.0,
        "missing_current": 0.0,
        "unseen_categories": [],
        "histogram": {
            "bins": ["(-inf, 0]", "(0, 1]", "(1, 2]", "(2, inf)"],
            "reference": [0.25, 0.25, 0.25, 0.25],
            "current": [0.2, 0.3, 0.25, 0.25],
        },
    }
    base.update(extra)
    return base


def verdict(features: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    drifted = [f for f in features if f["drifted"]]
    base: dict[str, Any] = {
        "detected": bool(drifted),
        "drifted_features": [f["feature"] for f in drifted],
        "drifted_share": 0.42,
        "unweighted_share": len(drifted) / len(features) if features else 0.0,
        "share_threshold": 0.35,
        "importance_weighted": True,
        "fdr_q": 0.1,
        "max_psi": 0.31,
        "reference_rows": 12000,
        "current_rows": 3456,
        "features": features,
    }
    base.update(extra)
    return base


def mixed_features() -> list[dict[str, Any]]:
    """Two stable features listed first, then three drifted ones whose report order is not the input order."""
    return [
        feature("stable_a", importance=0.3),
        feature("stable_b", statistic=None, psi=None, importance=0.05),
        # weak drift (1.2x the threshold) on an important feature: 0.3 * 1.2 = 0.36
        feature("weak_important", statistic=0.12, drifted=True, importance=0.3, psi=0.05),
        # strong drift (5x) on a minor feature: 0.05 * 5 = 0.25
        feature("strong_minor", statistic=0.5, drifted=True, importance=0.05, psi=0.31),
        # a categorical p-value feature: adjusted p 1e-6 against 0.05, ln ratio 4.6, 0.2 * 4.6 = 0.92
        feature(
            EVIL,
            kind="categorical",
            method="chisquare",
            kind_of_statistic="p_value",
            statistic=2.5e-7,
            threshold=0.05,
            p_adjusted=1e-6,
            drifted=True,
            importance=0.2,
            reference_mean=None,
            current_mean=None,
            missing_current=0.015,
            unseen_categories=["<b>new</b>", "other"],
            histogram={"bins": ["a", "b", "<b>new</b>"], "reference": [0.5, 0.5, 0.0], "current": [0.3, 0.4, 0.3]},
        ),
    ]


def test_report_is_well_formed_and_has_the_expected_sections() -> None:
    features = mixed_features()
    text = render_html(
        verdict(features),
        title="Drift of <churn> model",
        context={"model": "churn", "champion version": "7", "window": "2026-01-01 .. 2026-01-08", "run id": "<r&d>"},
        decision={"decision": "retrain", "severity": "high", "confidence": 0.8765432, "reason": "drift in <x>"},
    )
    doc = parse(text)
    assert text.startswith("<!DOCTYPE html>")
    assert doc.title == "Drift of <churn> model"
    for tag in ("html", "head", "body", "style", "h1", "table", "thead", "tbody", "details", "summary", "svg"):
        assert tag in doc.tags, tag
    assert doc.tags.count("details") == len(features)
    assert len(doc.ids) == len(set(doc.ids)), "ids must be unique across the page (charts included)"
    # context and decision are shown, escaped
    assert "&lt;r&amp;d&gt;" in text and "<r&d>" not in text
    assert "retrain" in text and "0.8765" in text and "drift in &lt;x&gt;" in text
    assert "Drift detected" in text
    assert "reference 12,000, current 3,456" in text


def test_every_feature_name_is_escaped_and_no_script_gets_in() -> None:
    features = mixed_features() + [feature("a&b \"quoted\" 'single'")]
    text = render_html(verdict(features), title=EVIL, context={EVIL: EVIL}, decision={"reason": EVIL})
    doc = parse(text)
    for f in features:
        assert html.escape(f["feature"]) in text
    assert sorted(doc.row_names) == sorted(f["feature"] for f in features)  # the parser reads the names back
    assert EVIL not in text
    assert "<script" not in text.lower() and "script" not in doc.tags
    assert "<b>" not in text  # categories and bin labels are data too
    assert not any(name.startswith("on") for name, _ in doc.attrs)


def test_drifted_features_come_first_ordered_by_importance_times_strength() -> None:
    features = mixed_features()
    text = render_html(verdict(features), title="t")
    doc = parse(text)
    expected = [EVIL, "weak_important", "strong_minor", "stable_a", "stable_b"]
    assert doc.row_names == expected
    assert doc.summary_names == expected
    drivers = text[text.index('id="drivers"') : text.index('id="features"')]
    assert [html.unescape(n) for n in re.findall(r'class="name" href="#f-\d+">(.*?)</a>', drivers)] == expected[:3]
    # drifted rows and sections are marked; only those sections are open
    assert text.count('<tr class="drifted">') == 3 and text.count('<tr class="stable">') == 2
    assert text.count("DRIFT</span>") == 3 * 2  # table and section header
    assert len(re.findall(r'<details id="f-\d+" class="feature drifted" open>', text)) == 3


def test_rule_text_states_the_threshold_and_q() -> None:
    doc = parse(render_html(verdict(mixed_features(), share_threshold=0.35, fdr_q=0.1), title="t"))
    assert "importance-weighted share of drifted features \u2265 0.35" in doc.rule
    assert "Benjamini-Hochberg at q = 0.1" in doc.rule

    unweighted = parse(render_html(verdict(mixed_features(), importance_weighted=False, fdr_q=None), title="t"))
    assert "share of drifted features \u2265 0.35" in unweighted.rule
    assert "importance-weighted" not in unweighted.rule and "Benjamini" not in unweighted.rule


def test_one_inline_svg_chart_per_feature() -> None:
    features = mixed_features()
    text = render_html(verdict(features), title="t")
    sections = re.findall(r"<details .*?</details>", text, flags=re.DOTALL)
    assert len(sections) == len(features)
    for section in sections:
        assert section.count("<svg ") == 1 and section.count("</svg>") == 1
        assert "reference" in section and "current" in section  # the legend
    assert "(-inf, 0]" in text  # bin labels are drawn as text


def test_the_report_references_nothing_outside_itself() -> None:
    text = render_html(verdict(mixed_features()), title="t", context={"run id": "abc"})
    doc = parse(text)
    assert "http://" not in text and "https://" not in text
    assert "//" not in re.sub(r"<style>.*?</style>", "", text, flags=re.DOTALL).replace("</", "")
    assert not {"script", "link", "img", "iframe", "object", "embed"} & set(doc.tags)
    assert "@import" not in text
    for name, value in doc.attrs:
        if name in ("href", "xlink:href", "src"):
            assert str(value).startswith("#"), (name, value)
    assert set(re.findall(r"url\((.)", text)) <= {"#"}


def test_write_html_writes_the_rendered_report(tmp_path) -> None:
    v = verdict(mixed_features())
    path = write_html(v, tmp_path / "nested" / "drift_report.html", title="Churn drift", context={"model": "churn"})
    assert path == tmp_path / "nested" / "drift_report.html" and path.is_file()
    written = path.read_text(encoding="utf-8")
    assert written == render_html(v, title="Churn drift", context={"model": "churn"})  # deterministic
    parse(written)


def test_missing_and_nan_values_render_as_na() -> None:
    features = [
        feature("none_stat", statistic=None, psi=None, importance=None, reference_mean=None, current_mean=None),
        feature("nan_stat", statistic=float("nan"), psi=float("nan"), p_adjusted=float("nan")),
        feature("no_histogram", histogram=None),
    ]
    text = render_html(verdict(features, max_psi=float("nan"), drifted_share=None), title="t")
    parse(text)
    rows = dict(re.findall(r'<a href="#f-\d+">([^<]*)</a></th>(.*?)</tr>', text))
    cells = re.findall(r'<td class="num">(.*?)</td>', rows["none_stat"])
    assert cells[0] == "n/a"  # statistic
    assert cells[:7] == ["n/a", "0.1", "n/a", "n/a", "n/a", "n/a", "n/a"]  # stat, threshold, p, importance, psi, means
    nan_cells = re.findall(r'<td class="num">(.*?)</td>', rows["nan_stat"])
    assert nan_cells[0] == "n/a" and nan_cells[2] == "n/a" and nan_cells[4] == "n/a"
    assert "nan" not in text.lower().replace("nan_stat", "")
    assert "No histogram was recorded" in text
    assert text.count("<svg ") == 2


def test_numbers_are_formatted_with_four_significant_digits_and_small_p_values_in_scientific_notation() -> None:
    features = [
        feature("d", statistic=0.123456789, psi=12.3456789, importance=0.333333),
        feature("p", kind_of_statistic="p_value", method="ks", statistic=1.23456e-5, threshold=0.05,
                p_adjusted=0.000987654, drifted=True),
        feature("q", kind_of_statistic="p_value", method="ks", statistic=0.0123456, threshold=0.05, p_adjusted=0.0456789),
        feature("z", kind_of_statistic="p_value", method="chisquare", statistic=0.0, threshold=0.05, p_adjusted=0.0,
                drifted=True),
    ]
    text = render_html(verdict(features), title="t")
    assert "0.1235" in text and "12.35" in text and "0.3333" in text
    assert "1.235e-05" in text and "9.877e-04" in text
    assert "0.01235" in text and "0.04568" in text
    assert "0.123456789" not in text


def test_empty_feature_list_and_no_drift() -> None:
    text = render_html(verdict([], detected=False, drifted_share=0.0), title="nothing to see")
    doc = parse(text)
    assert "No drift detected" in text and "No features were checked." in text
    assert "svg" not in doc.tags and "details" not in doc.tags
    assert "Features that drove the decision" not in text
    assert "0 of 0 features" in text


def test_many_categories_show_the_top_20_and_an_other_bar() -> None:
    bins = [f"c{i:02d}" for i in range(45)]
    reference = [0.0] * 45
    current = [0.0] * 45
    for i in range(45):  # c00..c19 are the largest on one side or the other; c20..c44 are small
        (reference if i % 2 else current)[i] = 0.04 if i < 20 else 0.001
    f = feature("city", kind="categorical", method="jensenshannon", reference_mean=None, current_mean=None,
                histogram={"bins": bins, "reference": reference, "current": current})
    text = render_html(verdict([f]), title="t")
    parse(text)
    svg = text[text.index("<svg ") : text.index("</svg>")]
    labels = re.findall(r"<text [^>]*>([^<]*)</text>", svg)
    assert "other (25 bins)" in labels
    assert all(f"c{i:02d}" in labels for i in range(20))
    assert not any(f"c{i:02d}" in labels for i in range(20, 45))


def test_long_feature_names_and_labels() -> None:
    long_name = "feature_" + "x" * 300
    f = feature(long_name, kind="categorical", reference_mean=None, current_mean=None,
                histogram={"bins": ["y" * 200, "$10 - $20", "z"], "reference": [0.5, 0.25, 0.25],
                           "current": [0.25, 0.5, 0.25]})
    text = render_html(verdict([f]), title=long_name)
    doc = parse(text)
    assert doc.row_names == [long_name]
    svg = text[text.index("<svg ") : text.index("</svg>")]
    labels = re.findall(r"<text [^>]*>([^<]*)</text>", svg)
    assert "y" * 17 + "\u2026" in labels  # shortened on the chart
    assert "$10 - $20" in labels  # dollar signs are text, not mathtext


def test_histogram_of_the_wrong_length_is_reported_not_raised() -> None:
    f = feature("broken", histogram={"bins": ["a", "b"], "reference": [1.0], "current": [0.5, 0.5]})
    text = render_html(verdict([f]), title="t")
    parse(text)
    assert "No chart: histogram has 2 bins but 1 reference shares" in text


def test_fifty_features_render_quickly() -> None:
    features = []
    for i in range(50):
        n = 45 if i % 5 == 0 else 10
        shares = [1.0 / n] * n
        shifted = [(2.0 if j < n // 2 else 0.5) / n for j in range(n)]
        total = sum(shifted)
        features.append(
            feature(
                f"feature_{i:02d}",
                kind="categorical" if i % 5 == 0 else "numeric",
                statistic=0.01 * i,
                drifted=i % 4 == 0,
                importance=1 / 50,
                histogram={"bins": [f"bin_{j}" for j in range(n)], "reference": shares,
                           "current": [s / total for s in shifted]},
            )
        )
    start = time.perf_counter()
    text = render_html(verdict(features), title="fifty")
    elapsed = time.perf_counter() - start
    print(f"\nrendered 50 features in {elapsed:.2f} s ({len(text) / 1e6:.2f} MB)")
    doc = parse(text)
    assert doc.tags.count("svg") == 50
    assert elapsed < 20


@pytest.mark.parametrize("detected", [True, False])
def test_headline_follows_the_verdict(detected: bool) -> None:
    text = render_html(verdict(mixed_features(), detected=detected), title="t")
    assert ('class="verdict drift"' in text) is detected
    assert ("No drift detected" in text) is not detected


def test_the_report_shows_calibration_status_unverifiable_features_and_p_values_below_the_float_range() -> None:
    import numpy as np
    import pandas as pd

    from include.retraining.config import DriftSection
    from include.retraining.monitoring import drift

    rng = np.random.default_rng(2)
    ref = pd.DataFrame({"a": rng.normal(size=800), "flat": np.zeros(800)})
    cur = pd.DataFrame({"a": rng.normal(9, 1, 800), "flat": np.zeros(800)})
    profile = drift.build_profile(ref, ["a", "flat"], [])
    verdict = drift.check(profile, drift.summarize(cur, profile),
                          DriftSection.model_validate({"numeric_method": "ks", "columns": {"flat": {"method": "wasserstein"}}}))
    page = render_html(verdict, title="scale")
    a = next(f for f in verdict["features"] if f["feature"] == "a")
    assert a["p_adjusted"] == 0.0 and a["log10_p_adjusted"] < -300
    assert f"e{int(np.floor(a['log10_p_adjusted']))}" in page  # not "0"
    assert "Unverifiable features" in page and "uncalibrated: the champion" in page
