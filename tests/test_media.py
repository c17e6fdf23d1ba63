"""tribev2.media: probing, audio reading, frame streaming, and clear errors for bad files."""

from __future__ import annotations

import hashlib
import json

import av
import numpy as np
import pytest
import soundfile

from tribev2.media import MediaError, frame_index, iter_frames, probe, read_audio


@pytest.fixture(scope="module")
def features_dir(shared_dir):
    return shared_dir / "features"


def test_probe_video_and_audio(features_dir, shared_dir):
    video = probe(features_dir / "stimuli" / "stimulus.mp4")
    assert (video.duration, video.fps, video.n_frames, video.width, video.height) == (6.0, 24.0, 144, 448, 336)
    assert video.has_video and not video.has_audio
    audio = probe(features_dir / "stimuli" / "stimulus.wav")
    assert (audio.sample_rate, audio.channels) == (44100, 2) and not audio.has_video
    assert audio.duration == pytest.approx(12.3)
    both = probe(shared_dir / "e2e" / "stimulus" / "stimulus.mp4")
    assert both.has_video and both.has_audio and both.duration == 130.0 and both.sample_rate == 44100


def test_frames_are_the_lossless_source(features_dir):
    """Every frame of the lossless fixture, in order, hashes to the generator's frame stack."""
    path = features_dir / "stimuli" / "stimulus.mp4"
    meta = json.loads((features_dir / "expected" / "meta.json").read_text())
    indices, frames = zip(*iter_frames(path))
    assert list(indices) == list(range(144))
    stack = np.stack(frames)
    assert stack.shape == (144, 336, 448, 3) and stack.dtype == np.uint8
    assert hashlib.sha256(stack.tobytes()).hexdigest() == meta["video"]["source_frames_sha256"]
    # a span decoded after a seek gives the same frames
    span = dict(iter_frames(path, first=100, last=110))
    assert sorted(span) == list(range(100, 111))
    assert all(np.array_equal(span[i], stack[i]) for i in span)


def test_frame_index_follows_moviepy():
    # int(fps * t + 1e-5): 2.0625 s at 24 fps is frame 49 (49.5 truncated), 1/24 s is frame 1 despite rounding
    assert frame_index([0.0, 2.0625, 1 / 24, 5.9375], 24.0).tolist() == [0, 49, 1, 142]


def test_read_audio_wav_and_span(features_dir):
    path = features_dir / "stimuli" / "stimulus.wav"
    whole, rate = read_audio(path)
    raw, _ = soundfile.read(str(path), dtype="int16", always_2d=True)
    assert rate == 44100 and whole.dtype == np.float32 and whole.shape == raw.shape
    np.testing.assert_array_equal(whole, raw / 32768)
    span, _ = read_audio(path, offset=1.5, duration=2.0)
    np.testing.assert_array_equal(span, whole[66150 : 66150 + 88200])
    np.testing.assert_array_equal(read_audio(path, offset=12.0)[0], whole[529200:])  # to the end
    np.testing.assert_array_equal(read_audio(path, offset=12.0, duration=5.0)[0], whole[529200:])


def test_read_audio_reads_only_the_span(features_dir, monkeypatch):
    """A 60-s chunk of a 2-hour soundtrack must not load the whole file: only the span's samples are read."""
    asked = []
    original = soundfile.SoundFile.read

    def spy(self, frames=-1, *args, **kwargs):
        out = original(self, frames, *args, **kwargs)
        asked.append(len(out))
        return out

    monkeypatch.setattr(soundfile.SoundFile, "read", spy)
    span, _ = read_audio(features_dir / "stimuli" / "stimulus.wav", offset=1.5, duration=2.0)
    assert len(span) == 88200 and sum(asked) == 88200


def test_read_audio_spans_of_a_container_decode_it_once(shared_dir, tmp_path, monkeypatch):
    """Chunks of a film's audio track read one after another decode the track once (not once per chunk), give
    the whole decode's samples, and leave nothing the caller could write into; a rewritten file is read again."""
    import shutil

    import tribev2.media as media

    film = tmp_path / "film.mp4"
    shutil.copyfile(shared_dir / "e2e" / "stimulus" / "stimulus.mp4", film)
    whole, rate = read_audio(film)
    media._decoded_track.cache_clear()
    decoded = []
    original = media._decode_audio
    monkeypatch.setattr(media, "_decode_audio", lambda *a: decoded.append(a[0]) or original(*a))
    chunks = [read_audio(film, offset=start, duration=60.0)[0] for start in (0.0, 60.0, 120.0)]
    assert len(decoded) == 1
    np.testing.assert_array_equal(np.concatenate(chunks), whole)
    chunks[0][:] = 0  # the caller's copy
    np.testing.assert_array_equal(read_audio(film, offset=0.0, duration=60.0)[0], whole[: 60 * rate])
    shutil.copyfile(shared_dir / "e2e" / "stimulus" / "stimulus.mp4", tmp_path / "other.mp4")
    (tmp_path / "other.mp4").replace(film)  # another file at the same path
    read_audio(film, offset=1.0, duration=1.0)
    assert len(decoded) == 2


def test_read_audio_from_video_like_ffmpeg(shared_dir):
    """The soundtrack as 16-bit stereo at 44.1 kHz is the WAV the reference's moviepy/ffmpeg wrote."""
    meta = json.loads((shared_dir / "e2e" / "expected" / "meta.json").read_text())["extracted_wav"]
    pcm, rate = read_audio(
        shared_dir / "e2e" / "stimulus" / "stimulus.mp4", sample_rate=44100, channels=2, dtype="int16"
    )
    assert rate == 44100 and pcm.dtype == np.int16 and list(pcm.shape) == meta["shape"]
    assert hashlib.sha256(pcm.tobytes()).hexdigest() == meta["pcm16_interleaved_sha256"]


def _empty_video(path):
    """An MP4 with a video track header and not a single frame."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        container.start_encoding()
        for packet in stream.encode(None):
            container.mux(packet)


def test_bad_files_give_clear_errors(tmp_path, features_dir):
    with pytest.raises(MediaError, match="no such file"):
        probe(tmp_path / "missing.mp4")
    fake = tmp_path / "notes.wav"
    fake.write_text("not audio at all")
    with pytest.raises(MediaError, match="cannot be read as audio"):
        read_audio(fake)
    fake_video = tmp_path / "notes.mp4"
    fake_video.write_text("not a video")
    with pytest.raises(MediaError, match="cannot be read as a media file"):
        probe(fake_video)
    with pytest.raises(MediaError, match="no audio stream"):
        read_audio(features_dir / "stimuli" / "stimulus.mp4")
    wav = tmp_path / "tone.wav"
    soundfile.write(str(wav), np.zeros((800, 1), np.float32), 16000)
    with pytest.raises(MediaError, match="no video stream"):
        next(iter_frames(wav))
    with pytest.raises(MediaError, match="past the end"):
        read_audio(wav, offset=1.0)
    with pytest.raises(ValueError, match="offset"):
        read_audio(wav, offset=float("nan"))
    with pytest.raises(ValueError, match=r"tone\.wav: channels must be 1 or 2, got 6"):
        read_audio(wav, channels=6)
    empty = tmp_path / "empty.mp4"
    _empty_video(empty)
    with pytest.raises(MediaError, match="how long"):
        probe(empty)
    with pytest.raises(MediaError, match="no video stream|no frames"):
        list(iter_frames(empty))


def test_frames_of_a_rotated_phone_video_come_upright(tmp_path):
    """A portrait phone video stores landscape pixels and a display rotation; ffmpeg (under the reference's
    moviepy) and players turn the frames upright, and so does iter_frames."""
    image = np.zeros((48, 64, 3), np.uint8)
    image[:10, :20] = 255  # a mark in the top-left corner of the stored pixels
    for degrees, turns in ((90, 1), (-90, 3), (180, 2)):
        path = tmp_path / f"phone{degrees}.mp4"
        with av.open(str(path), "w") as container:
            stream = container.add_stream("libx264rgb", rate=8, options={"qp": "0"})
            stream.width, stream.height, stream.pix_fmt = 64, 48, "rgb24"
            stream.set_display_rotation(degrees)  # counter-clockwise
            for _ in range(2):
                for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
        (index, frame), _ = list(iter_frames(path))
        np.testing.assert_array_equal(frame, np.rot90(image, turns))
        assert frame.flags.c_contiguous
