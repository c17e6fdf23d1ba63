"""Our Wav2Vec-BERT relative-position attention against transformers' own: the module on random inputs of a
small config (every attention implementation we follow, lengths around the band's edges, padding masks), the
whole model, and the audio extractor on the reference fixture. A change of transformers' numbers fails here."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from transformers import AutoModel, Wav2Vec2BertConfig, Wav2Vec2BertModel
from transformers.models.wav2vec2_bert.modeling_wav2vec2_bert import Wav2Vec2BertSelfAttention

from tribev2.features import AudioExtractor
from tribev2.features.w2vbert import RelativeKeySelfAttention, relative_key_bias, use_banded_relative_key_attention

LEFT, RIGHT = 6, 3


def small_config(implementation: str) -> Wav2Vec2BertConfig:
    config = Wav2Vec2BertConfig(
        hidden_size=32,
        num_attention_heads=2,
        intermediate_size=48,
        num_hidden_layers=2,
        feature_projection_input_dim=20,
        conv_depthwise_kernel_size=3,
        left_max_position_embeddings=LEFT,
        right_max_position_embeddings=RIGHT,
        position_embeddings_type="relative_key",
    )
    config._attn_implementation = implementation
    return config


def test_bias_is_the_clamped_distance_lookup():
    """The bias by its definition, element by element: scaling * q_l . E[clamp(r - l, -left, right) + left]."""
    generator = torch.Generator().manual_seed(0)
    query = torch.randn(2, 3, 13, 4, generator=generator)
    table = torch.randn(LEFT + RIGHT + 1, 4, generator=generator)
    bias = relative_key_bias(query, table, LEFT, RIGHT, 0.5)
    for row in range(13):
        for column in range(13):
            expected = 0.5 * query[:, :, row] @ table[min(max(column - row, -LEFT), RIGHT) + LEFT]
            torch.testing.assert_close(bias[:, :, row, column], expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
@pytest.mark.parametrize("length", [1, 2, LEFT, LEFT + RIGHT, LEFT + RIGHT + 1, 57])
def test_attention_matches_transformers(implementation, length):
    torch.manual_seed(length)
    config = small_config(implementation)
    theirs = Wav2Vec2BertSelfAttention(config).eval()
    ours = RelativeKeySelfAttention(theirs, config).eval()
    hidden = torch.randn(3, length, config.hidden_size)
    with torch.inference_mode():
        expected, expected_weights = theirs(hidden)
        out, weights = ours(hidden)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)
    if implementation == "eager":
        torch.testing.assert_close(weights, expected_weights, rtol=0, atol=1e-6)


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
def test_model_matches_transformers_with_and_without_padding(implementation):
    torch.manual_seed(0)
    try:
        reference = Wav2Vec2BertModel(small_config(implementation)).eval()
    except ValueError as err:  # transformers 4.x has no sdpa path for this model (ours follows its eager one)
        pytest.skip(str(err).splitlines()[0])
    model = copy.deepcopy(reference)
    assert use_banded_relative_key_attention(model) == 2
    assert all(isinstance(layer.self_attn, RelativeKeySelfAttention) for layer in model.encoder.layers)
    assert model.state_dict().keys() == reference.state_dict().keys()  # parameters shared, names unchanged
    features = torch.randn(2, 80, 20)
    mask = torch.ones(2, 80, dtype=torch.long)
    mask[1, 50:] = 0  # the second sequence is padded
    for attention_mask in (None, mask):
        with torch.inference_mode():
            expected = reference(features, attention_mask=attention_mask, output_hidden_states=True)
            out = model(features, attention_mask=attention_mask, output_hidden_states=True)
        for ours, theirs in zip(out.hidden_states, expected.hidden_states, strict=True):
            torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-5)


def test_other_attentions_are_left_alone():
    config = small_config("eager")
    config.position_embeddings_type = "rotary"
    model = Wav2Vec2BertModel(config)
    assert use_banded_relative_key_attention(model) == 0
    assert isinstance(model.encoder.layers[0].self_attn, Wav2Vec2BertSelfAttention)


def test_audio_extractor_uses_it_with_transformers_numbers(shared_dir):
    """On the reference's tiny model and stimulus: every hidden state as transformers' own attention gives it."""
    root = shared_dir / "features"
    extractor = AudioExtractor(root / "models" / "audio", device="cpu", progress=False, cache=False)
    waveform = extractor.waveform(str(root / "stimuli" / "stimulus.wav"), 0.0, 12.3)
    features = extractor.input_features(waveform)
    states = extractor.hidden_states(features)
    assert all(isinstance(layer.self_attn, RelativeKeySelfAttention) for layer in extractor.model.encoder.layers)
    reference = AutoModel.from_pretrained(root / "models" / "audio", dtype=torch.float32).eval()
    with torch.inference_mode():
        expected = reference(input_features=features, output_hidden_states=True).hidden_states
    expected = torch.stack(expected, dim=1).transpose(2, 3)
    assert np.abs(states.numpy() - expected.numpy()).max() <= 1e-5


def test_layers_share_one_bias_buffer_emptied_after_the_pass():
    torch.manual_seed(0)
    model = Wav2Vec2BertModel(small_config("sdpa")).eval()
    use_banded_relative_key_attention(model)
    workspace = model.encoder.layers[0].self_attn.workspace
    seen = []
    for layer in model.encoder.layers:
        assert layer.self_attn.workspace is workspace
        layer.self_attn.register_forward_hook(lambda *_: seen.append(workspace._local.buffer.data_ptr()))
    with torch.inference_mode():
        model(torch.randn(1, 30, 20))
    assert len(seen) == 2 and len(set(seen)) == 1
    assert workspace._local.buffer is None
    assert copy.deepcopy(model).encoder.layers[0].self_attn.workspace is not workspace  # copies start empty


def test_gradients_match_transformers():
    """Training: the bias is kept by autograd, so no buffer is shared; gradients as transformers'."""
    torch.manual_seed(0)
    reference = Wav2Vec2BertModel(small_config("eager"))
    model = copy.deepcopy(reference)
    use_banded_relative_key_attention(model)
    features = torch.randn(2, 40, 20)
    for net in (reference, model):
        net.eval()  # no dropout; autograd still records
        net(features).last_hidden_state.square().sum().backward()
    for (name, ours), theirs in zip(model.named_parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(ours.grad, theirs.grad, rtol=1e-5, atol=1e-6, msg=name)
