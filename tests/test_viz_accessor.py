"""Plotting from the data: ``.tribe.plot()`` and ``.tribe.plot_timecourse()`` exist after ``import tribev2``
(attached by ``tribev2.viz``) and draw predictions, evaluations and contributions."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from geometry import FOR_PLOTS

import tribev2
from tribev2.demo import demo_model, synthetic_features

REGIONS = ["superiortemporal", "lateraloccipital", "precentral"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A small seeded demo model (fsaverage3), its synthetic features and their prediction with the
    Desikan-Killiany regions (shipped with the dev install: no network)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRIBEV2_CACHE", str(tmp_path_factory.getbasetemp() / "tribev2-cache"))
        model = demo_model(
            **FOR_PLOTS,
        )
        features = synthetic_features(model, 12)
        ds = tribev2.predict_features(features, model=model, atlas="Desikan-Killiany")
    return model, features, ds


def brain_titles(figure):
    return [t.get_text() for t in figure.axes[0].texts if t.get_text().startswith("t = ")]


def test_accessor_methods_exist_after_import_tribev2():
    # tribev2/__init__ imports viz last, which attaches them (the analysis layer never imports viz)
    for obj in (xr.Dataset(), xr.DataArray([1.0])):
        assert callable(obj.tribe.plot) and callable(obj.tribe.plot_timecourse)
    assert tribev2.analysis.TribeAccessor.plot.__module__ == "tribev2.viz.accessor"


def test_prediction_maps_from_the_data(demo):
    _, _, ds = demo
    figure = ds.tribe.plot()  # no time: three maps spread over the recording
    assert brain_titles(figure) == ["t = 0 s", "t = 6 s", "t = 11 s"]
    assert figure.get_figwidth() * figure.dpi <= 900
    assert brain_titles(ds.prediction.tribe.plot(time=3, views="dorsal")) == ["t = 3 s"]
    mean = ds.prediction.mean("time").tribe.plot(figsize=(5, 2.5))
    assert tuple(np.round(mean.get_size_inches() * mean.dpi)) == (500, 250)


def test_region_timecourses(demo):
    from matplotlib.figure import Figure

    _, _, ds = demo
    figure = ds.tribe.plot_timecourse(roi=REGIONS)
    lines = figure.axes[0].get_lines()[:-1]  # the last line is the zero line
    means = ds.prediction.sel(subject="average").tribe.by_roi()
    assert sorted(line.get_label() for line in lines) == sorted(REGIONS)
    for line in lines:
        np.testing.assert_allclose(line.get_xdata(), ds["time"].values)
        np.testing.assert_allclose(line.get_ydata(), means.sel(roi=line.get_label()).values, rtol=1e-6)
    assert figure.axes[0].get_xlabel().startswith("time (s)")
    # per hemisphere, into an Axes of one's own
    own = Figure()
    ax = own.add_subplot()
    assert ds.tribe.plot_timecourse(roi="superiortemporal", hemi="separate", axes=ax) is own
    assert sorted(line.get_label() for line in ax.get_lines()[:-1]) == [
        "superiortemporal left",
        "superiortemporal right",
    ]
    with pytest.raises(ValueError, match="choose up to 12 regions"):
        ds.tribe.plot_timecourse(roi="*")
    with pytest.raises(ValueError, match="needs a 'time' dimension"):
        ds.prediction.mean("time").tribe.plot_timecourse(roi="precentral")


def test_evaluation_maps_and_region_bars(demo):
    _, _, ds = demo
    truth = ds.prediction.sel(subject="average").values + np.random.default_rng(0).normal(0, 0.5, (12, 1284))
    scores = tribev2.evaluate(ds, truth, segment_trs=4)
    figure = scores.tribe.plot()
    title = figure.texts[0].get_text()
    assert title.startswith("Pearson r over time, mean r = ") and "top-1 retrieval" in title
    assert f"{float(scores.pearson_r_mean[0]):.3f}" in title
    bar = figure.axes[-1]
    assert bar.get_ylabel() == "Pearson r over time"
    low, high = bar.get_ylim()
    assert low == pytest.approx(-high)  # r is drawn on symmetric limits
    regional = tribev2.evaluate(ds, truth, segment_trs=4, by_roi=True)
    bars = regional.tribe.plot(k=5).axes[0]
    names = [t.get_text() for t in bars.get_yticklabels()]
    best = regional.pearson_r.sel(subject="average").to_series().sort_values(ascending=False)
    assert names == list(best.index[:5])


def test_contributions_from_the_data(demo):
    model, features, _ = demo
    contribution = tribev2.contributions(features, model=model, atlas="Desikan-Killiany")
    figure = contribution.tribe.plot()
    assert [t.get_text() for t in figure.axes[0].get_legend().get_texts()] == ["text", "audio", "video"]
    audio = contribution.tribe.plot(modality="audio", time=4)
    assert audio.axes[-1].get_xlabel() == "audio contribution (a.u.)"
    lines = contribution.tribe.plot_timecourse(roi="superiortemporal").axes[0].get_lines()[:-1]
    assert sorted(line.get_label() for line in lines) == [
        "superiortemporal audio",
        "superiortemporal text",
        "superiortemporal video",
    ]


def test_plain_vertex_data_and_errors(demo):
    _, _, ds = demo
    values = xr.DataArray(np.linspace(-1, 1, 1284), dims="vertex", attrs={"long_name": "gradient"})
    assert values.tribe.plot().axes[-1].get_xlabel() == "gradient"
    with pytest.raises(ValueError, match="no variable 'bold'"):
        ds.tribe.plot(variable="bold")
