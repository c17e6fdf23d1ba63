"""Static figures rendered off-screen (EGL): sizes, non-blank images, and colour only where the data is.

The key check: a map that is non-zero only in one Desikan-Killiany region colours pixels only where that
region is seen in the view, and colours them there. Where the region is seen comes from painting its
vertices a flat marker colour in the same scene; the anatomy checks (superior temporal gyrus seen laterally,
not medially; left hemisphere on the left of a dorsal view...) hold the cameras to the brain's real layout.
"""

from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
import xarray as xr

import tribev2
from tribev2.viz import scene as sc
from tribev2.viz.static import plot_contributions, plot_surface, render

MARKER = (0, 255, 0)


@pytest.fixture(scope="module")
def desikan(shared_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("atlases")
    for hemi in ("lh", "rh"):
        shutil.copy(shared_dir / "atlases" / f"{hemi}.aparc.fsaverage5.annot", folder)
    return tribev2.load_atlas("Desikan-Killiany", path=folder)


@pytest.fixture(scope="module")
def scene():
    with sc.BrainScene("fsaverage5", surface="inflated", size=(320, 240)) as scene:
        yield scene


def region_map(atlas, region, hemi="left"):
    values = np.zeros(len(atlas.labels))
    values[atlas.vertices(region, hemi=hemi)] = 1.0
    return values


def coloured(image):
    """Pixels of a saturated colour: the colormap, not the gray cortex or the white background."""
    top, bottom = image.max(axis=-1).astype(int), image.min(axis=-1).astype(int)
    return (top > 20) & (top - bottom > 0.4 * top)


def seen(scene, atlas, region, view, hemi="left", hemis=None):
    """Where the region's vertices are seen: painted a flat marker, everything else gray."""
    colours = np.full((len(atlas.labels), 3), 128, dtype=np.uint8)
    colours[atlas.vertices(region, hemi=hemi)] = MARKER
    scene.paint(colours)
    image = scene.image(view, hemis).astype(int)
    return (image[..., 1] - np.maximum(image[..., 0], image[..., 2])) > 60


def dilate(mask, pixels):
    grown = mask.copy()
    for axis in (0, 1):
        for shift in range(1, pixels + 1):
            grown |= np.roll(mask, shift, axis) | np.roll(mask, -shift, axis)
    return grown


def check_region_colours(image, where_seen):
    """Colour only where the region is seen (up to 2 pixels of edge blending), and most of it there."""
    colour = coloured(image)
    assert colour.sum() >= 0.8 * where_seen.sum()
    assert not (colour & ~dilate(where_seen, 2)).any(), f"{(colour & ~dilate(where_seen, 2)).sum()} stray pixels"


@pytest.mark.parametrize(
    "region, view, hemis, visible",
    [
        ("superiortemporal", "lateral", ("left",), True),
        ("superiortemporal", "medial", ("left",), False),
        ("pericalcarine", "medial", ("left",), True),
        ("precentral", "dorsal", None, True),
        ("superiorparietal", "ventral", None, False),
        ("lingual", "ventral", None, True),
        ("lingual", "dorsal", None, False),
        ("lateraloccipital", "posterior", None, True),
        ("rostralmiddlefrontal", "anterior", None, True),
    ],
)
def test_region_map_colours_only_where_the_region_is_seen(scene, desikan, region, view, hemis, visible):
    where_seen = seen(scene, desikan, region, view, hemis=hemis)
    assert where_seen.any() == visible
    if visible:
        assert where_seen.sum() > 300
    scale = sc.ColorScale.for_values(np.array([-1.0, 1.0]), threshold=0.5)
    scene.paint(scale.colors(region_map(desikan, region), scene.background))
    check_region_colours(scene.image(view, hemis), where_seen)


def test_views_follow_the_brain_layout(scene, desikan):
    frontal = "rostralmiddlefrontal"
    # left lateral: camera at -x, anterior to the image's left; right lateral: anterior to the right
    left = seen(scene, desikan, frontal, "lateral", "left", ("left",))
    right = seen(scene, desikan, frontal, "lateral", "right", ("right",))
    middle = scene.size[0] / 2
    assert np.nonzero(left)[1].mean() < middle < np.nonzero(right)[1].mean()
    # dorsal view of both: the left hemisphere on the image's left, anterior at the top
    dorsal = seen(scene, desikan, frontal, "dorsal", "left")
    rows, columns = np.nonzero(dorsal)
    assert columns.max() < middle and rows.mean() < scene.size[1] / 2
    # lateral views of both hemispheres come side by side, left first
    image = scene.image("lateral")
    assert image.shape == (240, 640, 3)


@pytest.mark.parametrize(
    "view, order",
    [
        ("dorsal", ("left", "right")),
        ("ventral", ("right", "left")),
        ("anterior", ("right", "left")),
        ("posterior", ("left", "right")),
        ("lateral", ("left", "right")),
    ],
)
def test_hemisphere_order_is_where_the_hemispheres_are_seen(scene, view, order):
    colours = np.full((2 * scene.n_per_hemi, 3), 128, dtype=np.uint8)
    colours[: scene.n_per_hemi] = MARKER  # the left hemisphere
    scene.paint(colours)
    image = scene.image(view).astype(int)
    left = np.nonzero((image[..., 1] - np.maximum(image[..., 0], image[..., 2])) > 60)[1]
    assert scene.hemi_order(view) == order
    middle = image.shape[1] / 2
    assert (left.mean() < middle) == (order[0] == "left")
    assert scene.hemi_order(view, ("right",)) == ("right",)


def tags(figure):
    """The hemisphere tags of a figure, ``[(letter, x, y)]`` in figure pixels."""
    figure.canvas.draw()
    boxes = [(t.get_text(), t.get_window_extent()) for ax in figure.axes for t in ax.texts]
    return [(text, (b.x0 + b.x1) / 2, round((b.y0 + b.y1) / 2)) for text, b in boxes if text in ("L", "R")]


def test_figure_marks_the_hemispheres_apart(desikan):
    figure = plot_surface(region_map(desikan, "insula"), views=["lateral", "ventral"])
    marks = tags(figure)
    assert [m[0] for m in marks] == ["L", "R", "R", "L"]  # lateral: left | right; ventral (from below): R, L
    for (first, second), picture in zip((marks[:2], marks[2:]), figure.axes[0].images):
        box = picture.get_window_extent()  # lateral: both pictures side by side; ventral: both in one
        assert first[2] == second[2] > box.y1  # one line above each row
        # above the middle of each hemisphere, never "R L" side by side
        np.testing.assert_allclose([first[1], second[1]], [box.x0 + box.width / 4, box.x1 - box.width / 4], atol=1)


def test_render_sizes_surfaces_and_threshold(desikan):
    values = region_map(desikan, "superiortemporal")
    images = {
        s: render(values, view="lateral", hemi="left", surface=s, threshold=0.5, size=(200, 150))
        for s in ("inflated", "half-inflated", "pial")
    }
    for image in images.values():
        assert image.shape == (150, 200, 3)
        assert (image < 250).any(axis=-1).mean() > 0.3  # a brain fills the picture
        assert coloured(image).sum() > 200
    assert np.abs(images["inflated"].astype(int) - images["pial"]).mean() > 5  # different geometry
    # the same map with a threshold above every value shows no colour at all
    assert not coloured(render(values, view="lateral", hemi="left", threshold=2.0, vmax=1.0, size=(200, 150))).any()
    # values of no vertex (NaN) are not drawn either
    assert not coloured(
        render(np.where(values > 0, np.nan, 0.0), hemi="left", threshold=0.5, vmax=1.0, size=(200, 150))
    ).any()


def figure_pixels(figure):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3]


def panel(image, figure, index):
    """The pixels of the figure's ``index``-th brain picture."""
    box = figure.axes[0].images[index].get_window_extent()
    height = image.shape[0]
    return image[round(height - box.y1) : round(height - box.y0), round(box.x0) : round(box.x1)]


def text_px(figure):
    """Heights in pixels of every non-empty text of a figure (tick labels, titles, tags...)."""
    figure.canvas.draw()
    found = [
        t
        for t in figure.findobj(lambda o: hasattr(o, "get_text") and hasattr(o, "get_fontsize"))
        if t.get_text().strip() and t.get_visible()
    ]
    return {t.get_text(): t.get_fontsize() * figure.dpi / 72 for t in found}


def test_plot_surface_grid_of_views_and_times(desikan):
    # a "prediction" lit in the superior temporal gyrus at t = 2 s only, in the precentral gyrus at t = 4 s
    values = np.zeros((6, len(desikan.labels)))
    values[2] = region_map(desikan, "superiortemporal")
    values[4] = -region_map(desikan, "precentral")
    data = xr.DataArray(
        values,
        dims=("time", "vertex"),
        coords={"time": np.arange(6.0)},
        attrs={"long_name": "prediction", "units": "a.u."},
    )
    figure = plot_surface(
        data,
        time=[2, 4],
        views=["lateral", "medial"],
        hemi="left",
        surface="inflated",
        threshold=0.5,
        outlines=desikan,
        title="grid",
    )
    image = figure_pixels(figure)
    # notebook size: pictures at their default shown size (300 px wide), text of at least 12 px
    assert image.shape[1] == round(figure.get_figwidth() * figure.dpi) <= 900
    assert len(figure.axes[0].images) == 4
    shown = [im.get_window_extent() for im in figure.axes[0].images]
    assert all(abs(box.width - 300) < 1 and abs(box.height - 225) < 1 for box in shown)
    sizes = text_px(figure)
    assert {"t = 2 s", "t = 4 s", "lateral", "medial", "grid", "prediction (a.u.)"} <= set(sizes)
    assert min(sizes.values()) >= 12 and sizes["t = 2 s"] >= 13
    colour = [coloured(panel(image, figure, i)).sum() for i in range(4)]
    # pictures: (lateral, t=2), (lateral, t=4), (medial, t=2)... STG only laterally; precentral laterally
    assert colour[0] > 500 and colour[1] > 500 and colour[2] == 0
    # t = 2 s, lateral, colours the STG where it is seen, only there (rendered at twice the shown pixels)
    with sc.BrainScene("fsaverage5", surface="inflated", hemi="left", size=(300, 225)) as reference:
        where_seen = seen(reference, desikan, "superiortemporal", "lateral")
    first = panel(image, figure, 0)
    assert first.shape == (225, 300, 3)
    check_region_colours(first, where_seen)
    assert len(figure.axes) == 2  # the pictures and the colorbar
    from PIL import Image  # notebooks show the figure through its PNG, with or without pyplot

    assert np.asarray(Image.open(io.BytesIO(figure._repr_png_())).convert("RGB")).shape == image.shape
    assert figure.axes[-1].get_ylabel() == "prediction (a.u.)"


def test_wide_figures_shrink_to_notebook_width_and_text_stays_readable(desikan):
    data = xr.DataArray(
        np.stack([region_map(desikan, "insula") * (t + 1) for t in range(6)]),
        dims=("time", "vertex"),
        coords={"time": np.arange(6.0)},
    )
    # four lateral pairs would be 2,400 px at the default picture size
    figure = plot_surface(data, time=[0, 1, 2, 3], views="lateral")
    assert figure.get_figwidth() * figure.dpi == 900
    assert min(text_px(figure).values()) >= 12
    # figsize is honoured, pictures fit inside it
    figure = plot_surface(data, time=[0, 1], views="lateral", figsize=(6, 2.5), dpi=120)
    assert tuple(np.round(figure.get_size_inches() * figure.dpi)) == (720, 300)
    boxes = [im.get_window_extent() for im in figure.axes[0].images]
    assert all(b.x0 >= 0 and b.x1 <= 720 and b.y0 >= 0 and b.y1 <= 300 for b in boxes)
    assert coloured(figure_pixels(figure)).sum() > 1000


def test_plot_surface_draws_into_given_axes(desikan):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 3), dpi=100)
    left, right = figure.subplots(1, 2)
    right.plot([0, 1], [0, 1])
    returned = plot_surface(region_map(desikan, "superiortemporal"), views="lateral", axes=left, title="mine")
    assert returned is figure
    assert len(left.images) == 1 and not right.images  # the lateral pair in the given Axes only
    assert left.get_title() == "mine"
    image = figure_pixels(figure)
    box = left.get_window_extent()
    for im in left.images:  # inside the Axes' box, coloured where the STG is
        b = im.get_window_extent()
        assert box.x0 - 1 <= b.x0 and b.x1 <= box.x1 + 1
    assert coloured(panel(image, figure, 0)).sum() > 100
    assert len(figure.axes) == 3  # the colorbar beside the given Axes
    assert min(text_px(figure).values()) >= 11  # text reads in a small Axes too


def test_plot_surface_checks_its_input(desikan):
    data = xr.DataArray(np.zeros((3, len(desikan.labels))), dims=("time", "vertex"), coords={"time": [0.0, 1.0, 2.0]})
    with pytest.raises(ValueError, match="pick one with time"):
        render(data)
    with pytest.raises(ValueError, match="outside the data's time points"):
        plot_surface(data, time=10)
    with pytest.raises(ValueError, match="view='side'"):
        plot_surface(data, time=1, views="side")
    with pytest.raises(ValueError, match="match no fsaverage mesh"):
        plot_surface(np.zeros(1000))
    with pytest.raises(ValueError, match="no finite value"):
        plot_surface(np.full(len(desikan.labels), np.nan))


def test_part_of_the_cortex_is_placed_at_its_vertex_ids(desikan):
    ds = xr.Dataset(
        {"prediction": (("vertex",), np.ones(len(desikan.labels)))},
        coords={"vertex": np.arange(len(desikan.labels))},
        attrs={"mesh": "fsaverage5"},
    )
    ds = tribev2.atlas.attach_atlas(ds, desikan)
    part = ds.sel(roi="insula")
    maps = sc.brain_maps(part.prediction)
    assert maps.mesh == "fsaverage5"
    assert np.flatnonzero(np.isfinite(maps.values[0])).tolist() == desikan.vertices("insula").tolist()


def test_color_limits():
    values = np.array([-3.0, -1.0, 0.5, 2.0, np.nan])
    assert sc.color_limits(values) == (-3.0, 3.0)
    assert sc.color_limits(values, symmetric=False) == (-3.0, 2.0)
    assert sc.color_limits(np.array([0.0, 1.0, 4.0])) == (0.0, 4.0)
    assert sc.color_limits(np.arange(101.0), percentile=90) == (10.0, 90.0)
    assert sc.color_limits(values, vmax=1.5) == (-1.5, 1.5)


def test_given_color_limits_are_kept():
    values = np.array([-3.0, -1.0, 0.5, 2.0])  # both signs: symmetric by default
    assert sc.color_limits(values, vmin=0, vmax=2) == (0.0, 2.0)
    assert sc.color_limits(values, vmin=-2, vmax=5) == (-2.0, 5.0)
    assert sc.color_limits(values, vmin=-1) == (-1.0, 1.0)
    assert sc.color_limits(values, vmin=0) == (0.0, 2.0)  # a lower limit of zero: not centred on zero
    assert sc.color_limits(values, vmax=-1) == (-3.0, -1.0)
    with pytest.raises(ValueError, match="vmin=2 must be below vmax=1"):
        sc.color_limits(values, vmin=2, vmax=1)


def test_contributions_as_rgb(desikan):
    # text only in the superior temporal gyrus, video only in the lateral occipital cortex
    contributions = np.zeros((3, len(desikan.labels)))
    contributions[0, desikan.vertices("superiortemporal")] = 1.0
    contributions[2, desikan.vertices("lateraloccipital")] = 1.0
    data = xr.DataArray(contributions, dims=("modality", "vertex"), coords={"modality": ["text", "audio", "video"]})
    figure = plot_contributions(data, views="lateral", hemi="left", surface="inflated")
    image = figure_pixels(figure)
    pixels = panel(image, figure, 0)
    red = (pixels[..., 0].astype(int) - pixels[..., 1:].max(axis=-1)) > 60
    green = (pixels[..., 1].astype(int) - pixels[..., [0, 2]].max(axis=-1)) > 60
    blue = (pixels[..., 2].astype(int) - pixels[..., :2].max(axis=-1)) > 60
    assert red.sum() > 300 and blue.sum() > 300 and green.sum() == 0
    # red (temporal) lies below blue (occipital, posterior: right of the image in a left lateral view)
    assert np.nonzero(red)[1].mean() < np.nonzero(blue)[1].mean()
    assert [t.get_text() for t in figure.axes[0].get_legend().get_texts()] == ["text", "audio", "video"]
