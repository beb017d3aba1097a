"""Audio encoders: one interface (lengths, strides, masked head), invariants, registry, errors.

Invariants run in float64 on tiny widths, so "equal" means equal to rounding.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from xmodal.audio.encoders import (
    AudioEncoder,
    FeatureInfo,
    SoundNet,
    create_encoder,
    list_encoders,
    register_encoder,
)
from xmodal.errors import ParameterError

torch.set_num_threads(1)

# Tiny versions of every registered encoder (a new encoder must be added here).
TINY = {
    "mel-tcn": dict(channels=8, n_mels=16),
    "soundnet": dict(width=1 / 16, num_layers=5),
    "vggish": dict(width=1 / 16, n_mels=16),
}
EXACT = dict(rtol=1e-10, atol=1e-10)


def make(name: str, dtype=torch.float64) -> AudioEncoder:
    torch.manual_seed(0)
    enc = create_encoder(name, **TINY[name]).to(dtype).eval()
    # Random BatchNorm statistics, so BN is not the identity it is when fresh.
    for m in enc.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return enc


def noise(*shape: int, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 0.1 * torch.randn(*shape, generator=g, dtype=dtype)


def sizes(enc: AudioEncoder) -> list[int]:
    """Lengths in samples around the receptive field, most not multiples of the stride."""
    field, stride = enc.feature_info.receptive_field, enc.feature_info.stride
    return [field, field + 1, field + stride - 1, field + stride, field + 3 * stride + 37]


@pytest.fixture(scope="module", params=sorted(TINY))
def name(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def enc(name) -> AudioEncoder:
    return make(name)


# --------------------------------------------------------------------------- registry


def test_registry_lists_every_encoder_sorted_and_the_tiny_table_covers_it():
    assert list_encoders() == ["mel-tcn", "soundnet", "vggish"]
    assert sorted(TINY) == list_encoders()
    for name in list_encoders():
        assert isinstance(create_encoder(name, **TINY[name]), AudioEncoder)


def test_default_feature_info_follows_the_documented_formulas():
    # soundnet: stride 2**7 convs * 8 * 8 * 4 pools; field 1 + sum((k - 1) * stride so far).
    assert create_encoder("soundnet").feature_info == FeatureInfo(1024, 65536, 320542)
    # vggish: 25 ms / 10 ms frames, then 70 frames of field and 16 of stride.
    assert create_encoder("vggish").feature_info == FeatureInfo(512, 2560, 400 + 69 * 160)
    # mel-tcn: kernel 3, dilations 1, 2, 4, 8.
    assert create_encoder("mel-tcn").feature_info == FeatureInfo(256, 160, 400 + 30 * 160)


def test_soundnet_has_the_reference_kernels_strides_and_pools():
    convs = [m for m in SoundNet(width=1 / 16).modules() if isinstance(m, nn.Conv1d)]
    assert [c.kernel_size[0] for c in convs] == [64, 32, 16, 8, 4, 4, 4, 8]
    assert all(c.stride[0] == 2 and c.padding[0] == 0 for c in convs)
    pools = [
        (i + 1, m.kernel_size)
        for i, block in enumerate(SoundNet(width=1 / 16).body)
        for m in block
        if isinstance(m, nn.MaxPool1d)
    ]
    assert pools == [(1, 8), (2, 8), (5, 4)]


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ParameterError, match=r"'nope'") as info:
        create_encoder("nope")
    for name in list_encoders():
        assert repr(name) in str(info.value)


def test_registering_a_taken_name_raises():
    with pytest.raises(ParameterError, match=r"'vggish'"):
        register_encoder("vggish")(lambda **kw: None)
    assert list_encoders() == ["mel-tcn", "soundnet", "vggish"]


@pytest.mark.parametrize(
    "name, kwargs, echo",
    [
        ("soundnet", dict(width=0), r"width.*Found: 0"),
        ("vggish", dict(width=-0.5), r"width.*Found: -0.5"),
        ("soundnet", dict(sample_rate=-16000), r"sample_rate.*Found: -16000"),
        ("vggish", dict(sample_rate=-1), r"sample_rate.*Found: -1"),
        ("mel-tcn", dict(sample_rate=0), r"sample_rate.*Found: 0"),
        ("mel-tcn", dict(channels=0), r"channels.*Found: 0"),
        ("soundnet", dict(num_layers=9), r"num_layers.*Found: 9"),
        ("vggish", dict(n_mels=8), r"n_mels.*Found: 8"),
        ("mel-tcn", dict(dilated="yes"), r"dilated.*Found: 'yes'"),
    ],
)
def test_bad_constructor_arguments_raise_and_echo_the_value(name, kwargs, echo):
    with pytest.raises(ParameterError, match=echo):
        create_encoder(name, **kwargs)


# --------------------------------------------------------------------------- lengths and shapes


def test_output_length_and_stride_match_the_actual_output(enc):
    field, stride = enc.feature_info.receptive_field, enc.feature_info.stride
    for n in sizes(enc):
        features = enc.forward_features(noise(2, n))
        assert features.shape == (2, enc.feature_info.channels, (n - field) // stride + 1)
        assert enc.output_length(n) == features.shape[-1]
    assert enc.output_length(field - 1) == 0
    assert enc.output_length(field + 5 * stride) == enc.output_length(field) + 5
    lengths = torch.tensor(sizes(enc))
    assert enc.output_lengths(lengths).tolist() == [enc.output_length(n) for n in sizes(enc)]


def test_soundnet8_output_length_on_long_audio():
    enc = create_encoder("soundnet", width=1 / 32).eval()
    field, stride = 320542, 65536
    for n in (field, field + stride - 1, field + stride + 11):
        with torch.no_grad():
            steps = enc.forward_features(noise(1, n, dtype=torch.float32)).shape[-1]
        assert steps == enc.output_length(n) == (n - field) // stride + 1


def test_shapes_and_forward_is_head_of_features(enc):
    n = sizes(enc)[-1]
    x = noise(3, n)
    features = enc.forward_features(x)
    assert features.shape == (3, enc.feature_info.channels, enc.output_length(n))
    torch.testing.assert_close(enc(x), enc.forward_head(features), rtol=0, atol=0)
    torch.testing.assert_close(enc(x), features.mean(dim=-1), rtol=0, atol=0)
    # (T,) is a batch of one.
    torch.testing.assert_close(enc.forward_features(x[0]), enc.forward_features(x[:1]), **EXACT)


def test_step_t_sees_exactly_its_receptive_field(enc):
    field, stride = enc.feature_info.receptive_field, enc.feature_info.stride
    n, t = field + 3 * stride + 37, 1
    x = noise(1, n)
    base = enc.forward_features(x)
    after = x.clone()
    after[:, t * stride + field :] += 1.0  # everything after step t's last sample
    torch.testing.assert_close(enc.forward_features(after)[..., : t + 1], base[..., : t + 1])
    before = x.clone()
    before[:, : t * stride] += 1.0  # everything before step t's first sample
    torch.testing.assert_close(enc.forward_features(before)[..., t:], base[..., t:])


@pytest.mark.parametrize("name", ["vggish", "mel-tcn"])
def test_log_mel_frame_t_windows_samples_t_hop_to_t_hop_plus_win(name):
    frontend = make(name).frontend
    hop, win = frontend.hop_length, frontend.win_length
    assert (hop, win) == (160, 400)  # 10 ms and 25 ms at 16 kHz
    x = noise(1, 5 * hop + win + 77)
    mel = frontend(x)
    assert mel.shape[-1] == (x.shape[-1] - win) // hop + 1
    for t in (0, 3, mel.shape[-1] - 1):
        torch.testing.assert_close(mel[..., t], frontend(x[:, t * hop : t * hop + win])[..., 0])


# --------------------------------------------------------------------------- invariants


def test_batched_equals_per_item(enc):
    x = noise(3, sizes(enc)[-1], seed=1)
    features, vectors = enc.forward_features(x), enc(x)
    for b in range(3):
        torch.testing.assert_close(features[b : b + 1], enc.forward_features(x[b : b + 1]), **EXACT)
        torch.testing.assert_close(vectors[b : b + 1], enc(x[b : b + 1]), **EXACT)


def test_padding_changes_neither_the_valid_steps_nor_the_vector(enc):
    field, stride = enc.feature_info.receptive_field, enc.feature_info.stride
    lengths = torch.tensor([field + 2 * stride + 37, field + 5, field + stride + stride // 2])
    items = [noise(n, seed=10 + i) for i, n in enumerate(lengths.tolist())]
    # Padding 80 dB louder than the items, with an offset: it must not leak in anywhere
    # (not through a per-clip dB floor either).
    padded = 1e4 * noise(3, int(lengths.max()) + stride // 3, seed=99) + 3.0
    for b, item in enumerate(items):
        padded[b, : item.shape[0]] = item
    features, vectors = enc.forward_features(padded, lengths), enc(padded, lengths)
    steps = enc.output_lengths(lengths)
    assert steps.tolist() == [enc.output_length(n) for n in lengths.tolist()]
    for b, item in enumerate(items):
        alone = enc.forward_features(item)
        assert alone.shape[-1] == steps[b]
        torch.testing.assert_close(features[b : b + 1, :, : steps[b]], alone, **EXACT)
        assert (features[b, :, steps[b] :] == 0).all()
        torch.testing.assert_close(vectors[b : b + 1], enc(item), **EXACT)
    torch.testing.assert_close(vectors, enc.forward_head(features, steps), rtol=0, atol=0)


def test_forward_head_averages_exactly_the_first_lengths_steps(enc):
    c = enc.feature_info.channels
    features = torch.arange(2 * c * 5, dtype=torch.float64).view(2, c, 5)
    features[1, :, 2:] = 1e9  # steps past the length must not count
    vectors = enc.forward_head(features, torch.tensor([5, 2]))
    torch.testing.assert_close(vectors[0], features[0].mean(dim=-1))
    torch.testing.assert_close(vectors[1], features[1, :, :2].mean(dim=-1))


def test_gradients_reach_the_first_layer_and_the_waveform(name):
    enc = make(name).train()
    first = next(m for m in enc.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d)))
    x = noise(2, sizes(enc)[-1]).requires_grad_()
    enc(x).square().sum().backward()
    for grad in (first.weight.grad, x.grad):
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_to_float64_moves_weights_and_keeps_the_result(name):
    enc32 = make(name, torch.float32)
    enc64 = make(name, torch.float32).to(torch.float64)
    assert all(p.dtype == torch.float64 for p in enc64.parameters())
    x = noise(2, sizes(enc32)[-1])
    y32, y64 = enc32(x.float()), enc64(x)
    assert (y32.dtype, y64.dtype) == (torch.float32, torch.float64)
    torch.testing.assert_close(y64.float(), y32, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("name", ["vggish", "mel-tcn"])
def test_mel_filterbank_is_a_buffer_that_moves_with_the_module(name):
    enc = make(name, torch.float32)
    assert enc.frontend.mel.fb.shape == (16, 1 + 512 // 2)
    enc.to(torch.float64)
    assert enc.frontend.mel.fb.dtype == torch.float64  # kept in float64 at any module dtype
    enc.to("meta")
    buffers = dict(enc.named_buffers())
    assert "frontend.mel.fb" in buffers and "frontend.mel.window" in buffers
    assert all(b.device.type == "meta" for b in buffers.values())


# --------------------------------------------------------------------------- bad input


def test_bad_waveforms_raise_naming_the_problem(enc):
    n = enc.feature_info.receptive_field
    with pytest.raises(ParameterError, match=r"dtype.*int64"):
        enc(torch.zeros(2, n, dtype=torch.int64))
    with pytest.raises(ParameterError, match=r"\(B, T\).*\(2, 1, " + str(n)):
        enc(torch.zeros(2, 1, n))
    x = torch.zeros(2, n)
    x[1, 7] = float("nan")
    with pytest.raises(ParameterError, match=r"non-finite.*\(1, 7\)"):
        enc(x)
    with pytest.raises(ParameterError, match=rf"{n - 1} samples.*receptive field of {n}"):
        enc(torch.zeros(2, n - 1))
    with pytest.raises(ParameterError, match=r"torch.Tensor"):
        enc([0.0] * n)


def test_bad_lengths_raise_naming_the_problem(enc):
    field = enc.feature_info.receptive_field
    x = torch.zeros(2, field + 10)
    with pytest.raises(ParameterError, match=r"lengths.*\(2,\).*float32"):
        enc(x, torch.tensor([1.0, 2.0]))
    with pytest.raises(ParameterError, match=r"lengths.*\(2,\).*\(3,\)"):
        enc(x, torch.tensor([field, field, field]))
    with pytest.raises(ParameterError, match=rf"<= T = {field + 10}.*Found {field + 11}"):
        enc(x, torch.tensor([field, field + 11]))
    with pytest.raises(ParameterError, match=rf"{field - 1} samples.*receptive field"):
        enc(x, torch.tensor([field - 1, field]))
    c = enc.feature_info.channels
    with pytest.raises(ParameterError, match=rf"\(B, {c}, T'\).*\(2, {c + 1}, 4\)"):
        enc.forward_head(torch.zeros(2, c + 1, 4))
    with pytest.raises(ParameterError, match=r"\[1, 4\].*0\.\.4"):
        enc.forward_head(torch.zeros(2, c, 4), torch.tensor([0, 4]))
