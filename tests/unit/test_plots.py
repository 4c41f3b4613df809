"""Reviewer figures: the right panels with the right numbers on them, and PNG files that are real images."""

from __future__ import annotations

import struct
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure
from sklearn.metrics import average_precision_score, roc_auc_score

from include.retraining.release.plots import classification_figures, regression_figures, save_figures

CLASSIFICATION_KEYS = {"confusion_matrices", "roc_curves", "precision_recall_curves"}
REGRESSION_KEYS = {"residuals", "predicted_vs_actual"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def binary_case(rows: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, rows)
    cand = np.clip(0.35 * y + rng.normal(0.33, 0.2, rows), 0, 1)
    champ = np.clip(0.1 * y + rng.normal(0.45, 0.2, rows), 0, 1)
    return y, np.column_stack([1 - cand, cand]), np.column_stack([1 - champ, champ])


def multiclass_case(rows: int = 600, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, rows)
    cand = rng.dirichlet([1, 1, 1], rows)
    cand[np.arange(rows), y] += 0.6
    cand /= cand.sum(axis=1, keepdims=True)
    return y, cand, rng.dirichlet([1, 1, 1], rows)


def cell_texts(fig: Figure, panel: int) -> list[str]:
    return [t.get_text() for t in fig.axes[panel].texts]


def legend_texts(fig: Figure) -> list[str]:
    legend = fig.axes[0].get_legend()
    assert legend is not None
    return [t.get_text() for t in legend.get_texts()]


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_confusion_matrices_show_the_counts_and_class_names() -> None:
    y = np.array([0, 0, 0, 1, 1])
    # candidate predicts [0, 0, 1, 1, 1]: TN 2, FP 1, FN 0, TP 2; champion predicts all 0: TN 3, FN 2
    cand = np.array([0.1, 0.2, 0.8, 0.7, 0.9])
    champ = np.full(5, 0.2)
    figs = classification_figures(y, cand, champ, ["stay", "churn"], candidate_label="v7", champion_label="v6")
    assert set(figs) == CLASSIFICATION_KEYS
    assert all(isinstance(f, Figure) for f in figs.values())
    cm = figs["confusion_matrices"]
    panels = [ax for ax in cm.axes if ax.images]
    assert len(panels) == 2
    assert cell_texts(cm, 0) == ["2", "1", "0", "2"]  # row by row: actual stay, actual churn
    assert cell_texts(cm, 1) == ["3", "0", "2", "0"]
    assert [t.get_text() for t in cm.axes[0].get_xticklabels()] == ["stay", "churn"]
    assert [t.get_text() for t in cm.axes[0].get_yticklabels()] == ["stay", "churn"]
    assert cm.axes[0].get_title() == "v7\naccuracy 0.800"
    assert cm.axes[1].get_title() == "v6\naccuracy 0.600"


def test_binary_curves_carry_both_models_and_their_scores() -> None:
    y, cand, champ = binary_case()
    figs = classification_figures(y, cand, champ, [0, 1])
    roc = legend_texts(figs["roc_curves"])
    assert f"candidate (AUC {roc_auc_score(y, cand[:, 1]):.3f})" in roc
    assert f"champion (AUC {roc_auc_score(y, champ[:, 1]):.3f})" in roc
    pr = legend_texts(figs["precision_recall_curves"])
    assert f"candidate (AP {average_precision_score(y, cand[:, 1]):.3f})" in pr
    assert f"champion (AP {average_precision_score(y, champ[:, 1]):.3f})" in pr
    # the ROC curve of a model runs from (0, 0) to (1, 1) and never goes down
    line = next(ln for ln in figs["roc_curves"].axes[0].get_lines() if ln.get_label().startswith("candidate"))
    fpr, tpr = line.get_xdata(), line.get_ydata()
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0, 0, 1, 1)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)


def test_without_a_champion_only_the_candidate_is_drawn() -> None:
    y, cand, _ = binary_case()
    figs = classification_figures(y, cand, None, ["no", "yes"])
    assert set(figs) == CLASSIFICATION_KEYS
    assert len(figs["confusion_matrices"].axes) == 1
    for key in ("roc_curves", "precision_recall_curves"):
        labels = legend_texts(figs[key])
        assert any(s.startswith("candidate") for s in labels)
        assert not any(s.startswith("champion") for s in labels)
    reg = regression_figures(np.arange(10.0), np.arange(10.0) + 0.5, None)
    assert set(reg) == REGRESSION_KEYS
    assert len(reg["residuals"].axes) == 1 and len(reg["predicted_vs_actual"].axes) == 1


def test_multiclass_with_three_classes() -> None:
    y, cand, champ = multiclass_case()
    names = ["red", "green", "blue"]
    figs = classification_figures(np.array(names)[y], cand, champ, names)  # labels are mapped through classes
    assert set(figs) == CLASSIFICATION_KEYS
    cm = figs["confusion_matrices"]
    assert [t.get_text() for t in cm.axes[0].get_yticklabels()] == names
    counts = [int(s.replace(",", "")) for s in cell_texts(cm, 0)]
    assert len(counts) == 9 and sum(counts) == len(y)
    assert counts[0] == int(np.sum((y == 0) & (cand.argmax(axis=1) == 0)))
    roc = legend_texts(figs["roc_curves"])
    assert f"candidate (AUC {roc_auc_score(y, cand, multi_class='ovr'):.3f})" in roc
    assert f"champion (AUC {roc_auc_score(y, champ, multi_class='ovr'):.3f})" in roc
    assert "macro" in figs["roc_curves"].axes[0].get_title()
    onehot = np.eye(3)[y]
    pr = legend_texts(figs["precision_recall_curves"])
    assert f"candidate (AP {average_precision_score(onehot, cand, average='micro'):.3f})" in pr


def test_regression_panels_plot_the_residuals() -> None:
    rng = np.random.default_rng(2)
    y = rng.normal(20, 4, 300)
    cand, champ = y + rng.normal(0, 1, 300), y + rng.normal(1, 2, 300)
    figs = regression_figures(y, cand, champ, candidate_label="new", champion_label="old")
    assert set(figs) == REGRESSION_KEYS
    residuals = figs["residuals"]
    assert len(residuals.axes) == 2
    offsets = residuals.axes[0].collections[0].get_offsets()
    np.testing.assert_allclose(offsets[:, 0], cand)
    np.testing.assert_allclose(offsets[:, 1], y - cand)
    assert residuals.axes[0].get_title().startswith("new\nRMSE ")
    assert residuals.axes[1].get_title().startswith("old\nRMSE ")
    versus = figs["predicted_vs_actual"].axes[1].collections[0].get_offsets()
    np.testing.assert_allclose(versus, np.column_stack([y, champ]))


def test_regression_scatter_is_capped_at_the_same_rows_for_both_models() -> None:
    y = np.arange(1000.0)
    figs = regression_figures(y, y + 1, y - 1, max_points=100)
    first = figs["residuals"].axes[0].collections[0].get_offsets()
    second = figs["residuals"].axes[1].collections[0].get_offsets()
    assert len(first) == len(second) == 100
    np.testing.assert_allclose(first[:, 0] - 1, second[:, 0] + 1)  # the same actual values under both panels
    assert "100 of 1,000 rows shown" in figs["residuals"].get_suptitle()


def test_save_figures_writes_real_pngs_and_closes_them(tmp_path: Path) -> None:
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    y, cand, champ = binary_case()
    figs: dict[str, Figure] = dict(classification_figures(y, cand, champ, ["a", "b"]))
    rng = np.random.default_rng(3)
    yr = rng.normal(0, 1, 200)
    figs.update(regression_figures(yr, yr + rng.normal(0, 0.3, 200), yr + rng.normal(0, 0.6, 200)))
    managed = plt.figure()  # a pyplot-managed figure must be released as well
    managed.add_subplot().plot([0, 1], [1, 0])
    figs["from pyplot/extra"] = managed
    sizes = {name: fig.get_size_inches() for name, fig in figs.items()}
    assert plt.get_fignums() == [managed.number]

    paths = save_figures(figs, tmp_path / "figures")
    assert [p.name for p in paths] == [
        "confusion_matrices.png", "roc_curves.png", "precision_recall_curves.png",
        "residuals.png", "predicted_vs_actual.png", "from_pyplot_extra.png",
    ]
    for (name, inches), path in zip(sizes.items(), paths, strict=True):
        assert path.parent == tmp_path / "figures" and path.is_file()
        assert path.stat().st_size > 5_000, name
        width, height = png_size(path)
        assert (width, height) == (round(inches[0] * 110), round(inches[1] * 110)), name
    assert plt.get_fignums() == []


def test_bad_input_is_refused() -> None:
    y, cand, _ = binary_case(20)
    with pytest.raises(ValueError, match="shape"):
        classification_figures(y, cand[:, :1], None, ["a", "b"])
    with pytest.raises(ValueError, match="class indices"):
        classification_figures(y + 2, cand, None, ["a", "b"])
    with pytest.raises(ValueError, match="rows"):
        regression_figures(np.arange(5.0), np.arange(4.0), None)
