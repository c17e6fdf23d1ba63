"""Video features against the reference fixtures (../shared/features: tiny V-JEPA2 with 64 frames at 256 px,
a lossless 6-s clip) and a chunk of the end-to-end fixture; bad files.

A forward pass of the fixture model costs seconds on a CPU (8,192 tokens), so the model runs on three bins
only: the first and last bins of the fixture clip and the first bin of the e2e fixture's second chunk. The
windows are checked from the fixture's per-bin states through the same layer groups and grid placement.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.numpy import load_file
from test_features_base import SEGMENTS, assert_features_match

from tribev2.features import VideoExtractor
from tribev2.features.grid import place_on_event_grid


@pytest.fixture(scope="module")
def fixture(shared_dir):
    root = shared_dir / "features"
    extractor = VideoExtractor(root / "models" / "vjepa2", device="cpu", progress=False)
    return extractor, str(root / "stimuli" / "stimulus.mp4"), load_file(str(root / "expected" / "video.safetensors"))


def test_frame_times_and_the_last_frame_quirk(fixture):
    from tribev2.media import iter_frames

    extractor, path, expected = fixture
    assert (extractor.frames_per_clip, extractor.crop_size, extractor.shortest_edge) == (64, 256, 292)
    np.testing.assert_array_equal(extractor.request_times(6.0, 12), expected["frame_request_times"])
    requests = extractor.frame_requests(path, 0.0, 6.0)
    source = {extractor.resize_crop(frame).numpy().tobytes(): k for k, frame in iter_frames(path)}
    assert len(source) == 144  # every source frame is distinct, so a frame tells its index
    used = np.array([[source[frame.numpy().tobytes()] for frame in clip] for clip in extractor._clips(path, requests)])
    np.testing.assert_array_equal(used, expected["frame_indices"])
    assert requests[11, 63] == 144 and used[11, 63] == 142  # past the end: moviepy's previous frame


def test_pixels_match_the_reference_processor(fixture):
    extractor, path, expected = fixture
    clips = list(extractor._clips(path, extractor.frame_requests(path, 0.0, 6.0)[[0, 11]]))
    for b, clip in enumerate(clips):
        for f, frame in enumerate((0, 63)):
            pixels = extractor.normalize(clip[frame]).numpy()
            assert_features_match(pixels, expected["pixel_values_bins_first_last_frames_0_63"][b, f])


@pytest.mark.parametrize("segment", SEGMENTS)
def test_windows_from_the_reference_bin_states(fixture, segment):
    extractor, _, expected = fixture
    grouped = extractor.group_mean(expected["event_cached_layers_2hz"])  # (G, D, 12)
    start, duration = SEGMENTS[segment]
    out = np.zeros(expected[segment].shape, np.float32)
    place_on_event_grid(out, grouped, event_start=0.0, start=start, frequency=2.0)
    assert_features_match(out, expected[segment])


@pytest.mark.slow
def test_last_bin_states_match_the_reference(fixture):
    """All 41 hidden states of the last bin (its final frame repeated by the quirk), token-averaged."""
    extractor, path, expected = fixture
    states = extractor.event_state_means(path, 0.0, 6.0, bins=[11])
    assert_features_match(states.numpy(), expected["bin_all_hidden_states_tokmean"][[11]])


@pytest.mark.slow
def test_extract_matches_the_reference_end_to_end(fixture):
    """A half-second Video event has one bin, the fixture's first: extract() runs decode, frames, model,
    layer groups and placement."""
    extractor, path, expected = fixture
    events = pd.DataFrame([{"type": "Video", "start": 1.0, "duration": 0.5, "offset": 0.0, "filepath": path}])
    out = extractor.extract(events, 0.0, 2.0)
    reference = extractor.group_mean(expected["event_cached_layers_2hz"][..., 0])
    assert not out[..., [0, 1, 3]].any()
    assert_features_match(out[..., 2], reference)


@pytest.mark.slow
def test_chunk_start_matches_the_end_to_end_fixture(shared_dir, fixture):
    """The first bin of the second 60-s chunk (offset 60): its frames are clamped at the chunk start."""
    extractor = fixture[0]
    e2e = shared_dir / "e2e"
    path = str(e2e / "stimulus" / "stimulus.mp4")
    requests = extractor.frame_requests(path, 60.0, 70.0)
    assert requests.shape == (140, 64) and (requests[0, :56] == 600).all() and requests[-1, -1] == 1300
    states = extractor.event_state_means(path, 60.0, 70.0, bins=[0])[0, extractor.layer_indices]  # (20, D)
    expected = load_file(str(e2e / "expected" / "pr29_dedup.safetensors"))["features_video"]
    assert_features_match(extractor.group_mean(states).numpy(), expected[0][..., 120])


@pytest.fixture(scope="module")
def demo_video():
    from tribev2.demo import demo_extractors

    return demo_extractors(device="cpu", progress=False)["video"]


def test_final_norm_changes_only_the_last_state(demo_video, tmp_path):
    from tribev2.features import VideoExtractor

    stimulus = _demo_clip(tmp_path)
    plain = demo_video.event_state_means(stimulus, 0.0, 2.0)
    normed = VideoExtractor(demo_video.source, device="cpu", final_norm=True, progress=False)
    after = normed.event_state_means(stimulus, 0.0, 2.0)
    np.testing.assert_array_equal(plain[:, :-1], after[:, :-1])
    assert not torch.allclose(plain[:, -1], after[:, -1])
    assert normed.fingerprint() != demo_video.fingerprint()


@pytest.mark.slow
def test_compiled_layers_give_the_eager_states(demo_video, tmp_path):
    """``compile=True``: every encoder layer compiled once, when the model loads (about 25 s on a CPU), then the
    same states as the eager model, to float32 rounding."""
    import inspect

    from tribev2.features import VideoExtractor

    stimulus = _demo_clip(tmp_path)
    compiled = VideoExtractor(demo_video.source, device="cpu", compile=True, progress=False)
    assert not any(inspect.ismethod(layer.forward) for layer in compiled.model.encoder.layer)
    assert all(inspect.ismethod(layer.forward) for layer in demo_video.model.encoder.layer)
    eager = demo_video.event_state_means(stimulus, 0.0, 2.0)
    np.testing.assert_allclose(compiled.event_state_means(stimulus, 0.0, 2.0), eager, rtol=1e-5, atol=1e-5)


def test_compile_auto_decides_from_the_video_length(demo_video):
    """``compile="auto"`` (the default) compiles on CUDA below float32 for 10 minutes of video or more; never on
    the CPU, in float32, or with ``compile=False``; a bad value is refused."""
    from tribev2.features.video import AUTO_COMPILE_S

    fast = VideoExtractor(demo_video.source, device="cpu", dtype=torch.bfloat16, progress=False)
    assert fast.compile == "auto" == demo_video.compile

    def table(seconds):
        return pd.DataFrame({"type": ["Video", "Video", "Audio"], "duration": [seconds / 2, seconds / 2, 1e4]})

    assert not fast.auto_compiles(table(3600.0))  # the CPU
    exact = VideoExtractor(demo_video.source, device="cpu", progress=False)
    eager = VideoExtractor(demo_video.source, device="cpu", dtype=torch.bfloat16, compile=False, progress=False)
    for extractor in (fast, exact, eager):
        extractor.device = torch.device("cuda")  # the decision alone: nothing runs there
    assert fast.auto_compiles(table(AUTO_COMPILE_S)) and not fast.auto_compiles(table(AUTO_COMPILE_S - 1))
    assert not fast.auto_compiles(pd.DataFrame({"type": ["Video"]}))  # no durations: extract's checks will say so
    assert not fast.auto_compiles(pd.DataFrame({"type": ["Video"], "duration": ["ten minutes"]}))  # nor here
    assert not exact.auto_compiles(table(3600.0))  # float32: the exact path stays eager
    assert not eager.auto_compiles(table(3600.0))
    with pytest.raises(ValueError, match="compile must be"):
        VideoExtractor(demo_video.source, device="cpu", compile="yes")


def test_failed_compilation_leaves_the_layers_eager(demo_video, tmp_path, monkeypatch):
    """If the automatic compilation fails, a warning names the error and the eager layers give the states; it is
    not tried again."""
    import inspect

    import tribev2.features.video as video_module

    def broken(model):
        for layer in model.encoder.layer:
            layer.forward = lambda *args, **kwargs: (_ for _ in ()).throw(RuntimeError("no C compiler"))
        return model

    monkeypatch.setattr(video_module, "compile_layers", broken)
    stimulus = _demo_clip(tmp_path)
    extractor = VideoExtractor(demo_video.source, device="cpu", progress=False)
    with pytest.warns(UserWarning, match="no C compiler"):
        extractor._compile_or_warn()
    assert all(inspect.ismethod(layer.forward) for layer in extractor.model.encoder.layer)
    assert not extractor._compiled  # eager again: short batches are not filled with blank clips
    np.testing.assert_array_equal(
        extractor.event_state_means(stimulus, 0.0, 2.0), demo_video.event_state_means(stimulus, 0.0, 2.0)
    )
    extractor.device, extractor.dtype = torch.device("cuda"), torch.bfloat16  # the decision alone, as if fast
    assert not extractor.auto_compiles(pd.DataFrame({"type": ["Video"], "duration": [3600.0]}))


def test_compiled_batches_keep_one_shape(demo_video, tmp_path):
    """Where the layers are compiled, a last batch short of ``batch_size`` is filled with blank clips (one static
    shape, no recompilation) and their states dropped: the same states as the short batch."""
    stimulus = _demo_clip(tmp_path)
    extractor = VideoExtractor(demo_video.source, device="cpu", batch_size=4, compile=False, progress=False)
    shapes = []
    extractor.clip_state_means = lambda pixels, run=extractor.clip_state_means: (
        shapes.append(pixels.shape[0]) or run(pixels)
    )
    short = extractor.event_state_means(stimulus, 0.0, 3.0)  # 6 bins: batches of 4 and 2
    extractor._compiled = True
    filled = extractor.event_state_means(stimulus, 0.0, 3.0)
    assert shapes == [4, 2, 4, 4] and filled.shape == short.shape
    np.testing.assert_allclose(filled, short, rtol=1e-5, atol=1e-6)


def _tiny_vjepa2():
    """A random V-JEPA2 with the release's head width (88: three rotated slices of 28 and 4 channels left) and
    its 32 frames of tubelets, on a 2 x 2 grid: rotary angles up to 31 radians."""
    from transformers import VJEPA2Config, VJEPA2Model

    torch.manual_seed(0)
    config = VJEPA2Config(
        hidden_size=176,
        num_attention_heads=2,
        num_hidden_layers=2,
        crop_size=32,
        patch_size=16,
        frames_per_clip=64,
        tubelet_size=2,
        mlp_ratio=2.0,
        pred_hidden_size=32,
        pred_num_hidden_layers=1,
        pred_num_attention_heads=2,
    )
    return VJEPA2Model(config).eval(), torch.randn(2, 64, 3, 32, 32)


def _states(model, pixels, dtype=None):
    with torch.inference_mode(), torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
        return model(pixel_values_videos=pixels, skip_predictor=True, output_hidden_states=True).hidden_states


def test_precomputed_rotary_gives_transformers_states():
    """The rotary tables built once reproduce transformers' attention bit for bit in float32, and in bfloat16
    (autocast, as ``precision="fast"`` runs V-JEPA2) stay as close to float32 as transformers' own code."""
    import copy

    from tribev2.features.vjepa2 import precompute_rotary

    model, pixels = _tiny_vjepa2()
    tabled = precompute_rotary(copy.deepcopy(model))
    exact = _states(model, pixels)
    for ours, theirs in zip(_states(tabled, pixels), exact, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)

    def error(states):
        return max(float((a.float() - b).norm() / b.norm()) for a, b in zip(states, exact, strict=True))

    theirs, ours = error(_states(model, pixels, torch.bfloat16)), error(_states(tabled, pixels, torch.bfloat16))
    assert 0 < ours <= 1.05 * theirs < 0.02, (ours, theirs)
    held_in_bf16 = error(_states(precompute_rotary(copy.deepcopy(model), torch.bfloat16), pixels, torch.bfloat16))
    assert 0 < held_in_bf16 <= 1.05 * theirs, (held_in_bf16, theirs)  # the tables rounded, not the angles


def test_patch_embedding_as_matmul_gives_the_convolution():
    """The tubelets embedded by one matrix product give the 3-D convolution's tokens, in its order: to float32
    rounding in float32, and within bfloat16's rounding under autocast; a clip the kernel does not tile (an odd
    frame count), or a convolution that does not tile (padded), goes through the convolution."""
    import copy

    from tribev2.features.vjepa2 import patch_embedding_as_matmul

    model, pixels = _tiny_vjepa2()
    embed = model.encoder.embeddings.patch_embeddings
    ours = patch_embedding_as_matmul(copy.deepcopy(model)).encoder.embeddings.patch_embeddings
    videos = pixels.permute(0, 2, 1, 3, 4)  # (B, C, T, H, W), as VJEPA2Embeddings hands them over
    with torch.inference_mode():
        exact = embed(videos)
        torch.testing.assert_close(ours(videos), exact, rtol=1e-5, atol=1e-5)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fast, theirs = ours(videos), embed(videos)
        assert fast.dtype == torch.bfloat16
        error = float((fast.float() - exact).norm() / exact.norm())
        assert error <= 2 * float((theirs.float() - exact).norm() / exact.norm()) and error < 0.01, error
        odd = videos[:, :, :63]
        torch.testing.assert_close(ours(odd), embed(odd), rtol=0, atol=0)
        embed.proj.padding = ours.proj.padding = (0, 1, 1)  # no longer a tiling: the convolution itself
        torch.testing.assert_close(ours(videos), embed(videos), rtol=0, atol=0)


def test_own_attention_only_below_float32(demo_video):
    """Float32 keeps transformers' code (the exact path unchanged); bfloat16 rotates from tables held in
    bfloat16, shared by every layer, its layer norms in bfloat16, and its cache entries are told apart."""
    from tribev2.features import VideoExtractor

    fast = VideoExtractor(demo_video.source, device="cpu", dtype=torch.bfloat16, progress=False)
    assert fast.own_attention and not demo_video.own_attention
    assert fast.fingerprint()["rotary"] == "tables in torch.bfloat16" and "rotary" not in demo_video.fingerprint()
    assert fast.fingerprint()["norms"] == "in torch.bfloat16" and "norms" not in demo_video.fingerprint()
    assert "patches" in fast.fingerprint() and "patches" not in demo_video.fingerprint()
    assert "forward" in fast.model.encoder.embeddings.patch_embeddings.__dict__
    assert "forward" not in demo_video.model.encoder.embeddings.patch_embeddings.__dict__
    layers = fast.model.encoder.layer
    assert all(layer.attention.rotary_tables is layers[0].attention.rotary_tables for layer in layers)
    assert layers[0].attention.rotary_tables(8, "cpu")[0].dtype == torch.bfloat16
    assert all("forward" in layer.norm1.__dict__ and "forward" in layer.norm2.__dict__ for layer in layers)
    exact_layer = demo_video.model.encoder.layer[0]
    assert not hasattr(exact_layer.attention, "rotary_tables") and "forward" not in exact_layer.norm1.__dict__


def test_frames_converted_on_threads_come_in_order(demo_video, tmp_path):
    """Several conversion threads (the GPU resize's) give the frames, in order, that one thread gives (the CPU
    resize keeps one: it is multi-threaded itself)."""
    from tribev2.features import VideoExtractor
    from tribev2.features.video import _frames_at

    stimulus = _demo_clip(tmp_path)
    needed = np.unique(demo_video.frame_requests(stimulus, 0.0, 2.0))
    one = list(_frames_at(stimulus, needed, demo_video.resize_crop, 1))
    four = list(_frames_at(stimulus, needed, demo_video.resize_crop, 4))
    assert [i for i, _ in four] == [i for i, _ in one] == needed.tolist()[: len(one)]  # those the file holds
    assert len(one) >= 4
    for (_, a), (_, b) in zip(one, four, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert demo_video.conversion_workers == 1
    on_device = VideoExtractor(demo_video.source, device="cpu", pixels="device", progress=False)
    assert on_device.conversion_workers >= 1


def _demo_clip(tmp_path) -> str:
    """A 2-s, 8-fps clip of moving noise."""
    import av

    path = tmp_path / "clip.mp4"
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264rgb", rate=8, options={"qp": "0"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "rgb24"
        for _ in range(16):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return str(path)


def test_bad_video(demo_video, tmp_path, shared_dir):
    wav = str(shared_dir / "features" / "stimuli" / "stimulus.wav")
    with pytest.raises(ValueError, match="needs a video stream"):
        demo_video.event_features(wav, 0.0, 2.0)
    clip = _demo_clip(tmp_path)
    with pytest.raises(ValueError, match="past the end of the video"):
        demo_video.event_features(clip, 5.0, 2.0)
    with pytest.raises(ValueError, match="shorter than one"):
        demo_video.event_features(clip, 0.0, 0.2)
    with pytest.raises(ValueError, match="clip_duration"):
        VideoExtractor(demo_video.source, clip_duration=0.0)


def test_a_model_error_stops_the_decoding_thread(demo_video, tmp_path, monkeypatch):
    """The frames are decoded in a thread ahead of the model; an error in the model must stop it at once (in a
    notebook the last traceback stays alive, and the thread with its open file would spin on)."""
    import threading
    import time

    clip = _demo_clip(tmp_path)
    extractor = VideoExtractor(demo_video.source, device="cpu", batch_size=1, progress=False)

    def broken(pixel_values):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(extractor, "clip_state_means", broken)
    before = set(threading.enumerate())
    with pytest.raises(RuntimeError, match="out of memory") as kept:  # the traceback stays referenced
        extractor.event_state_means(clip, 0.0, 2.0)  # 4 bins, 2 prefetched: the thread waits to put more

    def started() -> set:
        return {t for t in set(threading.enumerate()) - before if t.name != "tqdm_monitor"}

    deadline = time.monotonic() + 5.0
    while started() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not started()
    assert kept.value is not None


def test_pixels_on_the_device_differ_by_rounding_only(demo_video, tmp_path):
    """``pixels="device"`` resizes in float on the model's device (here the CPU, as a GPU would): at most one grey
    level from the reference's uint8 resize; ``auto`` keeps the reference's path on a CPU."""
    assert demo_video.pixels == "cpu"
    on_device = VideoExtractor(demo_video.source, device="cpu", pixels="device", progress=False)
    frame = np.random.default_rng(1).integers(0, 256, (360, 640, 3), dtype=np.uint8)
    exact, fast = demo_video.resize_crop(frame), on_device.resize_crop(frame)
    assert fast.dtype == torch.uint8 and fast.shape == exact.shape
    assert (fast.int() - exact.int()).abs().max() <= 1
    stimulus = _demo_clip(tmp_path)
    np.testing.assert_allclose(
        on_device.event_state_means(stimulus, 0.0, 2.0),
        demo_video.event_state_means(stimulus, 0.0, 2.0),
        rtol=0,
        atol=0.05,
    )
    assert on_device.fingerprint() != demo_video.fingerprint()
    with pytest.raises(ValueError, match="pixels must be 'auto', 'cpu' or 'device'"):
        VideoExtractor(demo_video.source, pixels="gpu")
