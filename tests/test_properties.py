"""Property tests (hypothesis; the bounded ``ci`` profile of conftest.py by default) of the invariants behind
the table of hostile inputs: valid events tables and transcripts round-trip; any transcript either raises the
documented error or yields words inside the media; features of any valid shape and dtype predict what their
float32 copy predicts; saved Datasets detect any changed byte of their data."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from geometry import SMALL
from hypothesis import given
from hypothesis import strategies as st

import tribev2
from tribev2.dataset import CorruptDatasetError, attach_events
from tribev2.demo import demo_model, synthetic_features
from tribev2.events import events_from

MEDIA_S = 5.0
WORD = st.text(alphabet=st.characters(categories=("Ll", "Lu", "Nd")), min_size=1, max_size=8)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    import soundfile

    root = tmp_path_factory.mktemp("properties")
    wav = root / "speech.wav"
    soundfile.write(wav, np.zeros(int(16000 * MEDIA_S), np.float32), 16000)
    return root, wav, demo_model(**SMALL, device="cpu", cache_dir=root / "cache")


@st.composite
def valid_words(draw, max_words=6):
    """Words inside the media: start >= 0, duration >= 0, end within the media (overlaps allowed)."""
    n = draw(st.integers(1, max_words))
    rows = []
    for _ in range(n):
        start = draw(st.floats(0, MEDIA_S - 0.01, allow_nan=False))
        duration = draw(st.floats(0, MEDIA_S - start, allow_nan=False))
        rows.append((draw(WORD), round(start, 3), round(duration, 3)))
    return pd.DataFrame(rows, columns=["text", "start", "duration"])


def _words(events: pd.DataFrame) -> pd.DataFrame:
    w = (events[events["type"] == "Word"] if "type" in events else events)[["text", "start", "duration"]]
    return w.sort_values(["start", "text", "duration"]).reset_index(drop=True)


@given(words=valid_words(), suffix=st.sampled_from([".tsv", ".parquet"]))
def test_valid_events_tables_round_trip_through_files_and_events_from(setup, words, suffix):
    root, wav, _ = setup
    table = pd.concat(
        [
            pd.DataFrame([{"type": "Audio", "start": 0.0, "duration": MEDIA_S, "filepath": str(wav)}]),
            words.assign(type="Word"),
        ],
        ignore_index=True,
    )
    path = root / f"events{suffix}"
    table.to_csv(path, sep="\t", index=False) if suffix == ".tsv" else table.to_parquet(path)
    events = events_from(path)
    pd.testing.assert_frame_equal(_words(events), _words(table), check_dtype=False)


@given(words=valid_words())
def test_valid_transcripts_round_trip_through_events_and_a_saved_dataset(setup, words):
    root, wav, model = setup
    events = events_from(wav, transcript=words, cache_dir=root / "cache")
    pd.testing.assert_frame_equal(_words(events), _words(words), check_dtype=False)
    ds = attach_events(tribev2.predict_features(synthetic_features(model, MEDIA_S), model=model, atlas=None), events)
    back = tribev2.open_dataset(tribev2.save_dataset(ds, root / "with-events.nc"))
    pd.testing.assert_frame_equal(_words(back.tribe.events()), _words(events), check_dtype=False)


TIME = st.one_of(st.floats(-10, 10), st.floats(-1e6, 1e6), st.just(float("nan")), st.just(float("inf")))


@given(rows=st.lists(st.tuples(WORD, TIME, TIME), min_size=1, max_size=6), scale=st.sampled_from([1, 1000]))
def test_any_transcript_raises_the_documented_error_or_stays_inside_the_media(setup, rows, scale):
    root, wav, _ = setup
    table = pd.DataFrame([(w, s * scale, d * scale) for w, s, d in rows], columns=["text", "start", "duration"])
    try:
        with warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("always")
            events = events_from(wav, transcript=table, cache_dir=root / "cache")
    except ValueError as err:
        assert str(err).startswith("the transcript table"), err
        return
    words = events[events["type"] == "Word"]
    no_words = [str(w.message) for w in warned if str(w.message).startswith("the transcript table has no timed words")]
    assert len(no_words) == int(words.empty), no_words  # words dropped (no text left): said, once
    assert (words["start"] >= 0).all() and (words["duration"] >= 0).all()
    assert (words["start"] + words["duration"] <= MEDIA_S + 1.0).all()


@given(
    seconds=st.integers(1, 25),
    flat=st.booleans(),
    dtype=st.sampled_from(["float16", "float64", "int16"]),
    modalities=st.sets(st.sampled_from(["text", "audio", "video"]), min_size=1),
)
def test_features_of_any_valid_shape_predict_as_their_float32_copy(setup, seconds, flat, dtype, modalities):
    _, _, model = setup
    features = {k: v for k, v in synthetic_features(model, seconds).items() if k in modalities}
    given_ = {k: (np.round(v * 8) if dtype == "int16" else v).astype(dtype) for k, v in features.items()}
    if flat:
        given_ = {k: v.reshape(-1, v.shape[-1]) for k, v in given_.items()}
    copy = {k: v.astype(np.float32) for k, v in given_.items()}
    got = tribev2.predict_features(given_, model=model, atlas=None)
    expected = tribev2.predict_features(copy, model=model, atlas=None)
    np.testing.assert_array_equal(got.prediction.values, expected.prediction.values)


@given(values=st.integers(0, 2**32 - 1), position=st.floats(0, 1, exclude_max=True), bit=st.integers(0, 7))
def test_a_changed_byte_of_saved_data_never_passes_silently(setup, values, position, bit):
    root, _, _ = setup
    data = np.random.default_rng(values).standard_normal((16, 64)).astype(np.float32)
    ds = xr.Dataset({"prediction": (("time", "vertex"), data)})
    path = tribev2.save_dataset(ds, root / "flip.nc")
    raw = bytearray(path.read_bytes())
    stored = raw.find(data.tobytes()[:64])
    assert stored >= 0
    raw[stored + int(position * data.nbytes)] ^= 1 << bit
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptDatasetError, match=r"flip\.nc: the variable 'prediction' is corrupt"):
        tribev2.open_dataset(path)
