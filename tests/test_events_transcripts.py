"""Transcript readers: whisperX JSON (the reference's parsing rules), word lists, subtitles, faster-whisper output."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from faster_whisper.transcribe import Segment, Word

from tribev2.events import events_from, read_transcript, words_from_segments

WHISPERX = {
    "segments": [
        {
            "start": 0.5,
            "end": 2.0,
            "text": ' He said "hi" in 1999.',
            "words": [
                {"word": "He", "start": 0.5, "end": 0.7, "score": 0.9},
                {"word": "said", "start": 0.8, "end": 1.0},
                {"word": '"hi"', "start": 1.1, "end": 1.3},
                {"word": "in", "start": 1.35, "end": 1.5},
                {"word": "1999."},
            ],
        },  # untimed (whisperX leaves digits unaligned): dropped
        {"start": 2.5, "end": 3.0, "text": " 42", "words": [{"word": "42"}]},  # a segment with no timed word
        {
            "start": 3.2,
            "end": 4.0,
            "text": " Bye now.",
            "words": [{"word": "Bye", "start": 3.2, "end": 3.5}, {"word": "now.", "start": 3.6, "end": 4.0}],
        },
    ],
    "word_segments": [],
    "language": "en",
}


def test_whisperx_json_follows_the_reference_parser(tmp_path):
    path = tmp_path / "words.json"
    path.write_text(json.dumps(WHISPERX))
    words = read_transcript(path)
    assert words["text"].tolist() == ["He", "said", "hi", "in", "Bye", "now."]
    assert words["sequence_id"].tolist() == [0, 0, 0, 0, 2, 2]  # the untimed segment still takes index 1
    np.testing.assert_allclose(words["duration"], [0.2, 0.2, 0.2, 0.15, 0.3, 0.4])
    assert list(words.columns) == ["text", "start", "duration", "sequence_id"]


def test_word_lists_in_json_tsv_csv_agree(tmp_path):
    rows = [{"word": "Hello", "start": 0.2, "end": 0.6}, {"word": "world.", "start": 0.7, "end": 1.2}]
    (tmp_path / "a.json").write_text(json.dumps(rows))
    (tmp_path / "b.json").write_text(json.dumps({"words": rows}))
    pd.DataFrame(rows).rename(columns={"word": "text"}).to_csv(tmp_path / "c.csv", index=False)
    pd.DataFrame(
        {"text": ["Hello", "world."], "start": [0.2, 0.7], "duration": [0.4, 0.5], "sequence_id": [0, 0]}
    ).to_csv(tmp_path / "d.tsv", sep="\t", index=False)
    tables = [read_transcript(tmp_path / name) for name in ("a.json", "b.json", "c.csv", "d.tsv")]
    for table in tables:
        assert table["text"].tolist() == ["Hello", "world."]
        np.testing.assert_allclose(table["start"], [0.2, 0.7])
        np.testing.assert_allclose(table["duration"], [0.4, 0.5])


def test_subtitles_share_each_cue_among_its_words(tmp_path):
    srt = "1\n00:00:01,000 --> 00:00:03,000\nHello there\n\n2\n00:00:04,500 --> 00:00:05,500\n<i>Bye</i>\n"
    vtt = "WEBVTT\n\nNOTE made by hand\n\n00:01.000 --> 00:03.000\nHello there\n\n00:04.500 --> 00:05.500\nBye\n"
    (tmp_path / "s.srt").write_text(srt)
    (tmp_path / "s.vtt").write_text(vtt)
    for name in ("s.srt", "s.vtt"):
        words = read_transcript(tmp_path / name)
        assert words["text"].tolist() == ["Hello", "there", "Bye"]
        assert words["sequence_id"].tolist() == [0, 0, 1]
        np.testing.assert_allclose(words["start"], [1.0, 1.0 + 2 * 6 / 12, 4.5])
        np.testing.assert_allclose((words["start"] + words["duration"]).iloc[[1, 2]], [3.0, 5.5])


def test_faster_whisper_segments():
    def segment(index, words):
        return Segment(
            id=index,
            seek=0,
            start=words[0].start,
            end=words[-1].end,
            text="",
            tokens=[],
            avg_logprob=0.0,
            compression_ratio=1.0,
            no_speech_prob=0.0,
            words=words,
            temperature=0.0,
        )

    segments = [
        segment(0, [Word(0.0, 0.4, " Good", 0.9), Word(0.5, 0.9, " morning.", 0.8)]),
        segment(1, [Word(1.5, 1.8, ' "Yes"', 0.9)]),
    ]
    words = words_from_segments(segments)
    assert words["text"].tolist() == ["Good", "morning.", "Yes"]
    assert words["sequence_id"].tolist() == [0, 0, 1]


def test_a_transcript_alone_gives_words_without_media(tmp_path):
    path = tmp_path / "words.json"
    path.write_text(json.dumps(WHISPERX))
    events = events_from(path)
    assert set(events["type"]) == {"Word", "Sentence", "Text"}
    assert events.loc[events["type"] == "Text", "text"].item() == "He said hi in bye now"


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("w.xml", "<words/>", "unsupported format '.xml'"),
        ("w.json", "{not json", "cannot be parsed as JSON"),
        ("w.json", '{"text": "hello"}', "expected whisperX JSON"),
        ("w.csv", "word,begin\nhi,0.1\n", "needs the columns text (or word), start and duration"),
        ("w.srt", "just some text\n", "no subtitle cues found"),
    ],
)
def test_bad_transcripts_name_the_file_and_the_expected_form(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        read_transcript(path)
    assert str(path) in str(info.value)


def test_missing_transcript_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_transcript(tmp_path / "nothing.json")


def test_without_a_spacy_pipeline_sentences_come_from_rules():
    from tribev2.events.language import add_text_events, sentence_splitter, spacy_pipeline_name

    if spacy_pipeline_name("french") is not None:
        pytest.skip("a French spaCy pipeline is installed")
    sentence_splitter.cache_clear()
    words = pd.DataFrame(
        {
            "type": "Word",
            "text": ["Bonjour", "Paris.", "Il", "pleut."],
            "start": [0.0, 0.5, 1.2, 1.5],
            "duration": 0.3,
            "sequence_id": 0.0,
            "timeline": "default",
        }
    )
    with pytest.warns(UserWarning, match="no spaCy pipeline for 'french' is installed"):
        events = add_text_events(words, language="french")
    assert events.loc[events["type"] == "Text", "text"].item() == "Bonjour paris. Il pleut"
    assert (events["type"] == "Sentence").sum() == 2
    assert set(events.loc[events["type"] == "Word", "language"]) == {"french"}


def test_transcripts_without_timed_words(tmp_path):
    path = tmp_path / "untimed.json"
    path.write_text(json.dumps({"segments": [{"text": " 1999", "words": [{"word": "1999"}]}]}))
    with pytest.raises(ValueError, match=r"transcript .*untimed.json has no timed words"):
        events_from(path)
    wav = tmp_path / "quiet.wav"
    sf.write(wav, np.zeros(16000, dtype=np.int16), 16000)
    with pytest.warns(UserWarning, match=r"untimed.json has no timed words: the events of .*quiet.wav have no"):
        events = events_from(wav, transcript=path)
    assert events["type"].tolist() == ["Audio"]


def test_word_list_cells_are_read_as_written(tmp_path):
    """Words that look like numbers keep their text, and an empty text cell is no word (not the word 'nan')."""
    (tmp_path / "n.tsv").write_text(
        "text\tstart\tduration\tsequence_id\n007\t0.0\t0.5\t0\n1999\t0.5\t0.5\t\n\t1.0\t0.5\t1\nNaN\t1.5\t0.5\t1\n"
    )
    words = read_transcript(tmp_path / "n.tsv")
    assert words["text"].tolist() == ["007", "1999", "NaN"]
    np.testing.assert_allclose(words["start"], [0.0, 0.5, 1.5])
    np.testing.assert_array_equal(words["sequence_id"], [0.0, np.nan, 1.0])
    (tmp_path / "n.csv").write_text("word,start,end\n1999,0.0,0.5\n2000,0.5,1.0\n,1.0,1.5\n")
    assert read_transcript(tmp_path / "n.csv")["text"].tolist() == ["1999", "2000"]
    table = pd.DataFrame({"text": ["a", np.nan, None], "start": [0.0, 1.0, 2.0], "duration": 0.5})
    assert events_from(None, transcript=table).query("type == 'Word'")["text"].tolist() == ["a"]


def test_subtitle_entities_are_decoded(tmp_path):
    (tmp_path / "e.vtt").write_text("WEBVTT\n\n00:00.000 --> 00:02.000\nTom &amp; Jerry&#39;s <b>show</b>\n")
    assert read_transcript(tmp_path / "e.vtt")["text"].tolist() == ["Tom", "&", "Jerry's", "show"]


def test_a_transcript_beside_a_stimulus_with_words_is_refused(tmp_path):
    """transcript= would be ignored for a transcript or an events table: it is refused, naming both."""
    path = tmp_path / "words.json"
    path.write_text(json.dumps(WHISPERX))
    with pytest.raises(ValueError, match=r"the stimulus, the transcript .*words.json, has its words already"):
        events_from(path, transcript=path)
    table = events_from(path)
    with pytest.raises(ValueError, match="the stimulus, an events table, has its words already"):
        events_from(table, transcript=path)
    table.to_csv(tmp_path / "events.tsv", sep="\t", index=False)
    with pytest.raises(ValueError, match=r"the stimulus, the events table .*events.tsv, has its words already"):
        events_from(tmp_path / "events.tsv", transcript=pd.DataFrame({"text": ["a"], "start": [0], "duration": [1]}))
