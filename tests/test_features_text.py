"""Text features against the reference fixtures (../shared/features: tiny Llama, 23 words, 3 windows)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.numpy import load_file
from test_features_base import SEGMENTS, assert_features_match

from tribev2.features import TextExtractor, extract_features


@pytest.fixture(scope="module")
def fixture(shared_dir):
    root = shared_dir / "features"
    words = pd.read_csv(root / "stimuli" / "words.tsv", sep="\t")
    extractor = TextExtractor(root / "models" / "text", device="cpu", progress=False)
    return extractor, words, load_file(str(root / "expected" / "text.safetensors"))


def test_tokens_match_the_reference(fixture):
    extractor, words, expected = fixture
    ids, n_word = extractor.token_ids(words["context"].tolist(), words["text"].tolist())
    np.testing.assert_array_equal(np.concatenate(ids), expected["context_input_ids_flat"])
    np.testing.assert_array_equal(np.cumsum([0] + [len(x) for x in ids]), expected["context_input_ids_offsets"])
    np.testing.assert_array_equal([len(x) for x in ids], expected["context_n_tokens"])
    np.testing.assert_array_equal(np.array([len(x) for x in ids]) - n_word, expected["prefix_n_tokens"])
    assert n_word[words["text"].tolist().index("xylophone-shaped")] == 15


def test_hidden_states_and_groups_match_the_reference(fixture):
    extractor, words, expected = fixture
    contexts, texts = words["context"].tolist(), words["text"].tolist()
    assert extractor.causal and len(extractor._chains(extractor.token_ids(contexts, texts)[0])) == 1
    means = extractor.hidden_state_means(contexts, texts)  # one forward pass for the 23 words
    assert_features_match(means, expected["word_all_hidden_states_tokmean"])
    assert_features_match(means[:, extractor.layer_indices], expected["word_cached_layers"])
    assert_features_match(extractor.word_features(contexts, texts), expected["word_groups"])


@pytest.mark.parametrize("segment", SEGMENTS)
def test_windows_match_the_reference(fixture, segment):
    extractor, words, expected = fixture
    start, duration = SEGMENTS[segment]
    out = extract_features(words, extractors=[extractor], start=start, duration=duration)["text"]
    assert out.dtype == np.float32
    assert_features_match(out, expected[segment])


def test_sliding_contexts_match_one_pass_per_word(fixture):
    """Contexts that are not prefixes of one another (the 1,024-word cap) and padded batches give the same
    states as each context alone."""
    extractor, words, _ = fixture
    contexts = [c.split(" ", 2)[-1] if i % 2 else c for i, c in enumerate(words["context"])]  # drop 2 words
    texts = words["text"].tolist()
    ids, n_word = extractor.token_ids(contexts, texts)
    assert len(extractor._chains(ids)) > 10
    batched = extractor.hidden_state_means(contexts, texts)
    for w in (1, 8, 22):
        alone = torch.stack(extractor._forward([ids[w]]))[:, 0, len(ids[w]) - n_word[w] :].mean(1).numpy()
        np.testing.assert_allclose(batched[w], alone, atol=2e-5, rtol=0)


def test_cache_hits_and_invalidation(fixture, shared_dir):
    from tribev2.cache import cache_dir

    extractor, words, _ = fixture
    folder = cache_dir("features") / "text"
    before = set(folder.glob("*.npy"))
    first = extractor.extract(words, 0.0, 12.0)
    (entry,) = set(folder.glob("*.npy")) - before
    np.save(entry, np.full_like(first, 7.0))  # a marked entry: a second call must read it back
    assert (extractor.extract(words, 0.0, 12.0) == 7.0).all()
    edited = words.assign(context=words["context"].str.replace("Martha", "Maria"))
    changed = extractor.extract(edited, 0.0, 12.0)  # a changed context is a new entry
    assert not (changed == 7.0).any() and not np.array_equal(changed, first)
    other = TextExtractor(
        shared_dir / "features" / "models" / "text", device="cpu", layers=(0.25, 0.5, 1.0), progress=False
    )
    assert not (other.extract(words, 0.0, 12.0) == 7.0).any()  # other layers: never the stale entry
    assert not list(folder.glob(".*"))  # atomic writes leave no temporary files behind


def test_bad_words(fixture):
    extractor, words, _ = fixture
    with pytest.raises(ValueError, match=r"'start'.*row\(s\) 3"):
        extractor.extract(words.assign(start=words["start"].where(words.index != 3, np.nan)), 0.0, 10.0)
    with pytest.raises(ValueError, match="'start'"):
        extractor.extract(words.assign(start=words["start"] - 1.0), 0.0, 10.0)
    with pytest.raises(ValueError, match="non-empty 'context'"):
        extractor.extract(words.assign(context=None), 0.0, 10.0)
    no_words = words.iloc[:0]
    assert not extractor.extract(no_words, 0.0, 10.0).any()  # the reference gives zeros
    assert extractor.extract(no_words, 0.0, 10.0).shape == (2, 64, 20)


def test_bidirectional_model_gets_one_pass_per_word(tmp_path):
    """Prefix sharing is exact only for causal models; a BERT-like encoder is detected and run word by word."""
    import shutil

    from transformers import BertConfig, BertModel

    from tribev2.demo import demo_extractors

    demo = demo_extractors(device="cpu")["text"]
    folder = tmp_path / "bert"
    shutil.copytree(demo.source, folder)
    (folder / "model.safetensors").unlink()
    config = BertConfig(
        vocab_size=len(demo.tokenizer), hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=64
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    bert = TextExtractor(folder, device="cpu", progress=False)
    assert demo.causal and not bert.causal
    contexts, texts = ["The keeper", "The keeper climbed"], ["keeper", "climbed"]
    ids, n_word = bert.token_ids(contexts, texts)
    means = bert.hidden_state_means(contexts, texts)
    for w in range(2):
        alone = torch.stack(bert._forward([ids[w]]))[:, 0, len(ids[w]) - n_word[w] :].mean(1).numpy()
        np.testing.assert_allclose(means[w], alone, atol=1e-5)


@pytest.mark.slow
def test_windowed_mode_shares_passes_past_the_context_cap():
    """Past the 1,024-word cap, runs of ``stride`` words read the context of the run's last word: each word's
    context is the end of its exact one (cap - stride + 1 .. cap + 1 words), one pass per run, features close
    to exact; before the cap nothing changes."""
    from tribev2.demo import demo_extractors
    from tribev2.events.language import MAX_CONTEXT_WORDS, contexts
    from tribev2.features.text import windowed_contexts

    rng = np.random.default_rng(0)
    vocabulary = ["ball", "red.", "the", "girl,", "runs", "into", "garden", "and", "sees", "a", "dog's", "sky", "naïve"]
    vocabulary += ["東京", "12345", "—", '"quoted"']
    texts = [vocabulary[i] for i in rng.integers(0, len(vocabulary), 1100)]
    chars = np.cumsum([0] + [len(t) + 1 for t in texts[:-1]]).tolist()
    running = " ".join(texts)
    exact = contexts(running, chars, [len(t) for t in texts], [len(running)] * len(texts))
    stride = 64
    windowed = windowed_contexts(exact, stride)
    assert windowed[:MAX_CONTEXT_WORDS] == exact[:MAX_CONTEXT_WORDS]
    for own, new, text in zip(exact, windowed, texts):
        assert own.endswith(new) and new.endswith(text)
        assert MAX_CONTEXT_WORDS - stride + 2 <= len(new.split()) <= MAX_CONTEXT_WORDS + 1 or new == own

    extractor = demo_extractors(
        device="cpu", progress=False, cache=False, per_modality={"text": {"mode": "windowed", "stride": stride}}
    )["text"]
    reference = TextExtractor(extractor.source, device="cpu", progress=False, cache=False)
    ids, n_word = extractor.token_ids(windowed, texts)
    assert len(extractor._chains(ids)) <= 1 + (1100 - MAX_CONTEXT_WORDS) // stride + 2
    shared_ids, shared_n = extractor.windowed_token_ids(exact, texts)  # one tokenization per run: the same tokens
    assert all(np.array_equal(a, b) for a, b in zip(shared_ids, ids)) and np.array_equal(shared_n, n_word)
    two_texts = exact[:40] + exact[:40]  # a run whose words are not all beginnings of its last context: tokenized alone
    alone_ids, alone_n = extractor.token_ids(windowed_contexts(two_texts, stride), texts[:40] * 2)
    shared_ids, shared_n = extractor.windowed_token_ids(two_texts, texts[:40] * 2)
    assert all(np.array_equal(a, b) for a, b in zip(shared_ids, alone_ids)) and np.array_equal(shared_n, alone_n)
    assert len(reference._chains(reference.token_ids(exact, texts)[0])) == 1 + 1100 - (MAX_CONTEXT_WORDS + 1)
    fast, slow = extractor.word_features(exact, texts), reference.word_features(exact, texts)
    np.testing.assert_allclose(fast[:MAX_CONTEXT_WORDS], slow[:MAX_CONTEXT_WORDS], atol=1e-6, rtol=0)  # passes' lengths
    r = np.corrcoef(fast[MAX_CONTEXT_WORDS:].ravel(), slow[MAX_CONTEXT_WORDS:].ravel())[0, 1]
    assert 0.99 < r < 1.0
    with pytest.raises(ValueError, match="mode must be one of"):
        TextExtractor(extractor.source, mode="sliding")
