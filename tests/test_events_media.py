"""Media rows, chunking, the soundtrack in the cache, and clear errors for files that cannot be used."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from tribev2.cache import cache_root
from tribev2.data.make_demo_stimulus import demo_frame, write_mp4
from tribev2.events import check_events, events_from
from tribev2.events.chunks import chunk_bounds, chunk_media
from tribev2.events.media import soundtrack
from tribev2.events.table import make_table, media_row
from tribev2.media import MediaError, probe


def tone(seconds: float, rate: int = 22050) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def leftovers() -> list[str]:
    """Temporary entries (atomic writes in progress or abandoned) anywhere in the cache."""
    return [str(p) for p in cache_root().rglob(".*")] if cache_root().exists() else []


@pytest.mark.parametrize(
    "duration, expected",
    [
        (30.0, [(0, 30)]),
        (89.0, [(0, 89)]),
        (90.0, [(0, 60), (60, 30)]),
        (130.0, [(0, 60), (60, 70)]),
        (150.0, [(0, 60), (60, 60), (120, 30)]),
        (200.0, [(0, 60), (60, 60), (120, 80)]),
    ],
)
def test_chunk_bounds_follow_the_reference(duration, expected):
    assert chunk_bounds(duration) == [(float(a), float(b)) for a, b in expected]


def test_chunks_move_start_and_offset_together():
    events = make_table([media_row("Video", "v.mp4", duration=130.0, frequency=25.0, start=5.0, offset=2.0)])
    chunks = chunk_media(events)
    assert chunks[["start", "offset", "duration", "stop"]].to_numpy().tolist() == [[5, 2, 60, 65], [65, 62, 70, 135]]


def test_video_gives_video_and_audio_rows_and_a_cached_soundtrack(tmp_path):
    path = write_mp4(tmp_path / "clip.mp4", lambda t: demo_frame(t, 3.0), 3.0, audio=tone(3.0))
    info = probe(path)
    assert (info.duration, info.fps, info.sample_rate) == (3.0, 10.0, 22050)
    events = events_from(path, transcript=pd.DataFrame({"text": ["hello"], "start": [1.0], "duration": [0.5]}))
    media = events[events["type"].isin(["Audio", "Video"])]
    assert media["type"].tolist() == ["Audio", "Video"]
    assert media["duration"].tolist() == [3.0, 3.0]
    wav = media["filepath"].iloc[0]
    samples, rate = sf.read(wav)
    assert rate == 44100 and samples.shape[1] == 2 and abs(len(samples) / rate - 3.0) < 0.05
    assert soundtrack(info) == type(info.path)(wav)  # decoded once, then reused from the cache
    assert leftovers() == []


def test_a_soundtrack_shorter_than_its_video_is_padded_with_silence(tmp_path):
    # 3 s of video, 1 s of sound: the Audio row lasts 3 s, so the WAV must too (else features are stretched)
    path = write_mp4(tmp_path / "short_sound.mp4", lambda t: demo_frame(t, 3.0), 3.0, audio=tone(1.0))
    info = probe(path)
    assert info.duration == 3.0
    samples, rate = sf.read(soundtrack(info))
    assert abs(len(samples) / rate - 3.0) < 0.01
    assert np.abs(samples[: rate // 2]).max() > 0.1 and np.abs(samples[round(1.2 * rate) :]).max() == 0


def test_audio_file_is_used_as_it_is(tmp_path):
    path = tmp_path / "speech.flac"
    sf.write(path, tone(2.5, 16000), 16000)
    events = events_from(path, transcript=pd.DataFrame({"text": ["hi"], "start": [0.5], "duration": [0.2]}))
    audio = events[events["type"] == "Audio"].iloc[0]
    assert audio["filepath"] == str(path) and audio["duration"] == 2.5 and audio["frequency"] == 16000


def test_video_without_audio_warns_and_keeps_the_video(tmp_path):
    path = write_mp4(tmp_path / "silent_film.mp4", lambda t: demo_frame(t, 2.0), 2.0)
    with pytest.warns(UserWarning, match="silent_film.mp4 has no audio track"):
        events = events_from(path)
    assert events["type"].tolist() == ["Video"]


def test_audio_only_mp4_warns_and_keeps_the_sound(tmp_path):
    path = write_mp4(tmp_path / "voice.mp4", None, 2.0, audio=tone(2.0))
    words = pd.DataFrame({"text": ["hi"], "start": [0.5], "duration": [0.2]})
    with pytest.warns(UserWarning, match="voice.mp4 has no video stream: only its sound will be used"):
        events = events_from(path, transcript=words)
    assert sorted(events["type"]) == ["Audio", "Sentence", "Text", "Word"]  # no Video row
    audio = events[events["type"] == "Audio"].iloc[0]
    assert audio["duration"] == 2.0 and sf.info(audio["filepath"]).duration >= 2.0  # its soundtrack, as for a .m4a


@pytest.mark.parametrize("name, content", [("garbage.mp4", b"this is not a video" * 100), ("noise.wav", b"RIFF1234")])
def test_corrupt_files_name_the_file(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(MediaError, match=f"{name}: cannot be read"):
        events_from(path)
    assert leftovers() == []


def test_truncated_video_fails_cleanly(tmp_path):
    whole = write_mp4(tmp_path / "whole.mp4", lambda t: demo_frame(t, 3.0), 3.0, audio=tone(3.0))
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(MediaError, match="cut.mp4"):
        events_from(cut)
    assert leftovers() == []


def test_unsupported_missing_and_empty_inputs(tmp_path):
    (tmp_path / "notes.docx").write_bytes(b"PK")
    with pytest.raises(ValueError, match=r"notes.docx: unsupported file type '.docx'; expected a video"):
        events_from(tmp_path / "notes.docx")
    with pytest.raises(FileNotFoundError, match="nothing.mp4: no such file"):
        events_from(tmp_path / "nothing.mp4")
    (tmp_path / "empty.txt").write_text("  \n")
    with pytest.raises(ValueError, match="empty.txt: the text file is empty"):
        events_from(tmp_path / "empty.txt")


def test_events_tables_are_checked_and_completed(tmp_path):
    words = pd.DataFrame(
        {"type": "Word", "text": ["Hello", "there.", "Bye"], "start": [0.1, 0.5, 1.2], "duration": [0.3, 0.4, 0.3]}
    )
    events = events_from(words)  # words without contexts get their Text, Sentence rows and contexts
    assert events.loc[events["type"] == "Word", "context"].tolist() == ["Hello", "Hello there.", "Hello there. Bye"]
    path = tmp_path / "events.tsv"
    events.to_csv(path, sep="\t", index=False)
    again = events_from(path)
    assert again["context"].fillna("").tolist() == events["context"].fillna("").tolist()
    with pytest.raises(ValueError, match="unknown event type"):
        check_events(pd.DataFrame({"type": ["Music"], "start": [0.0], "duration": [1.0]}))
    with pytest.raises(ValueError, match="needs the columns type, start, duration; missing duration"):
        check_events(pd.DataFrame({"type": ["Word"], "start": [0.0]}))


def test_events_table_files_keep_words_that_look_missing(tmp_path):
    """Words such as 'None' or 'NA' survive an events TSV (the CLI's --events output) read back as a stimulus."""
    words = pd.DataFrame({"type": "Word", "text": ["None", "NA", "null."], "start": [0.1, 0.5, 1.2], "duration": 0.3})
    path = tmp_path / "events.tsv"
    events_from(words).to_csv(path, sep="\t", index=False)
    assert events_from(path).query("type == 'Word'")["text"].tolist() == ["None", "NA", "null."]
    quoted = tmp_path / "quoted.csv"  # a quoted header is still an events table, not a word list
    quoted.write_text('"type","start","duration","filepath"\n"Audio",0,2.5,"clip.wav"\n')
    assert events_from(quoted)["type"].tolist() == ["Audio"]


def test_unreadable_events_tables_and_untyped_rows_name_the_problem(tmp_path):
    (tmp_path / "latin.tsv").write_bytes(b"type\tstart\tduration\ttext\nWord\t0\t1\tcaf\xe9\n")
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    for name, problem in (
        ("latin.tsv", r"not UTF-8 text \(byte 0xe9 at offset 37"),
        ("broken.parquet", "cannot be read"),
    ):
        with pytest.raises(ValueError, match=rf"events table .*{name}: {problem}"):
            events_from(tmp_path / name)
    with pytest.raises(ValueError, match=r"events table: 1 row\(s\) have no type"):
        events_from(pd.DataFrame({"type": ["Word", None], "start": [0.0, 1.0], "duration": 0.5, "text": "a"}))


def test_long_non_ascii_names_fit_the_cache(tmp_path):
    """A 249-byte stem (83 CJK characters) is a valid file name; its cached soundtrack must be one too."""
    path = write_mp4(tmp_path / ("映" * 83 + ".m4v"), lambda t: demo_frame(t, 1.0), 1.0, audio=tone(1.0))
    events = events_from(path, transcript=pd.DataFrame({"text": ["hi"], "start": [0.2], "duration": [0.3]}))
    wav = Path(events.loc[events["type"] == "Audio", "filepath"].item())
    assert wav.is_file() and wav.name.startswith("映" * 32) and len(wav.name.encode()) <= 100


def test_a_second_audio_track_is_named_in_a_warning(tmp_path):
    """A film with two soundtracks (two languages, say): the first is heard, and the warning says so."""
    import av

    path = tmp_path / "two_languages.m4a"
    with av.open(str(path), "w") as container:
        streams = [container.add_stream("aac", rate=16000) for _ in range(2)]
        for stream in streams:
            stream.layout = "mono"
        for stream in streams:
            wave = tone(1.0, rate=16000)
            for first in range(0, len(wave), 1024):
                frame = av.AudioFrame.from_ndarray(wave[None, first : first + 1024], format="flt", layout="mono")
                frame.sample_rate = 16000
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
    assert probe(path).audio_streams == 2
    words = pd.DataFrame({"text": ["hi"], "start": [0.2], "duration": [0.2]})
    with pytest.warns(UserWarning, match="two_languages.m4a has 2 audio tracks: the first is used"):
        events = events_from(path, transcript=words)
    assert "Audio" in set(events["type"])
