"""Image encoders: one interface (shapes, strides, head), input handling, registry, errors."""

from __future__ import annotations

import urllib.error

import pytest
import torch

from xmodal.errors import DataError, ParameterError, XmodalError
from xmodal.vision import FeatureInfo, ImageEncoder, create_encoder, list_encoders


@pytest.fixture(scope="module")
def small() -> ImageEncoder:
    torch.manual_seed(0)
    return create_encoder("small-cnn", channels=32).eval()


@pytest.fixture(scope="module")
def resnet18() -> ImageEncoder:
    torch.manual_seed(0)
    return create_encoder("resnet18").eval()


def images(b: int = 2, size: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_registry_lists_and_creates_every_encoder():
    assert list_encoders() == ["factored-cnn", "resnet18", "resnet34", "resnet50", "small-cnn"]
    assert isinstance(create_encoder("small-cnn"), ImageEncoder)
    assert create_encoder("small-cnn").feature_info == FeatureInfo(channels=128, stride=8)
    assert create_encoder("resnet34").feature_info == FeatureInfo(channels=512, stride=32)


def test_unknown_encoder_name_lists_the_known_ones():
    with pytest.raises(ParameterError, match=r"'vit-huge'") as info:
        create_encoder("vit-huge")
    for name in list_encoders():
        assert repr(name) in str(info.value)


@pytest.mark.parametrize(
    ("name", "kwargs", "size", "channels", "stride"),
    [
        ("small-cnn", {"channels": 32}, 64, 32, 8),
        ("small-cnn", {}, 32, 128, 8),
        ("factored-cnn", {"channels": 32}, 64, 32, 8),
        ("resnet18", {}, 224, 512, 32),
        ("resnet18", {"output_stride": 16}, 64, 256, 16),
        ("resnet34", {"output_stride": 16}, 64, 256, 16),
        ("resnet50", {}, 64, 2048, 32),
        ("resnet50", {"output_stride": 16}, 64, 1024, 16),
    ],
)
def test_feature_map_shape_matches_feature_info(name, kwargs, size, channels, stride):
    enc = create_encoder(name, **kwargs).eval()
    assert enc.feature_info == FeatureInfo(channels=channels, stride=stride)
    with torch.no_grad():
        feats = enc.forward_features(images(1, size))
        vec = enc(images(1, size))
    assert feats.shape == (1, channels, size // stride, size // stride)
    assert vec.shape == (1, channels)


def test_forward_is_head_of_features_and_head_is_spatial_mean(small):
    x = images()
    with torch.no_grad():
        feats = small.forward_features(x)
        head = small.forward_head(feats)
        out = small(x)
    torch.testing.assert_close(out, head)
    torch.testing.assert_close(head, feats.mean(dim=(2, 3)))
    torch.testing.assert_close(head[1, 5], feats[1, 5].sum() / 64)


@pytest.mark.parametrize("fixture", ["small", "resnet18"])
def test_uint8_input_equals_float_input_divided_by_255(fixture, request):
    enc = request.getfixturevalue(fixture)
    raw = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    with torch.no_grad():
        torch.testing.assert_close(enc(raw), enc(raw.float() / 255))


def test_input_is_standardised_with_the_encoders_statistics(small, resnet18):
    x = images(1, 8)
    torch.testing.assert_close(small.normalize(x), (x - 0.5) / 0.5)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(resnet18.normalize(x), (x - mean) / std)
    # normalize=False skips it: a mid-grey image then gives a different feature map.
    raw = create_encoder("small-cnn", channels=32, normalize=False).eval()
    raw.load_state_dict(small.state_dict(), strict=False)
    with torch.no_grad():
        assert not torch.allclose(raw(x), small(x))


@pytest.mark.parametrize("fixture", ["small", "resnet18"])
def test_batched_equals_per_item_in_eval_mode(fixture, request):
    enc = request.getfixturevalue(fixture)
    x = images(3)
    with torch.no_grad():
        batched = enc.forward_features(x)
        single = torch.cat([enc.forward_features(x[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(batched, single, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(batched[0], batched[1])  # the items do differ


def test_gradients_reach_the_input_and_the_weights(small):
    enc = create_encoder("small-cnn", channels=16)
    x = images(2, 32).requires_grad_()
    enc(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in enc.parameters())


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (torch.rand(2, 1, 64, 64), r"\(B, 3, H, W\).*\(2, 1, 64, 64\)"),
        (torch.rand(3, 64, 64), r"\(B, 3, H, W\).*\(3, 64, 64\)"),
        (torch.rand(0, 3, 64, 64), r"images is empty.*\(0, 3, 64, 64\)"),
        (torch.zeros(1, 3, 8, 8, dtype=torch.int64), r"uint8.*torch.int64"),
        (torch.full((1, 3, 8, 8), float("nan")), r"finite"),
        ([[0.0]], r"torch.Tensor.*list"),
    ],
)
def test_bad_images_raise_parameter_error(small, bad, match):
    with pytest.raises(ParameterError, match=match):
        small(bad)


@pytest.mark.parametrize("name", ["small-cnn", "resnet18"])
def test_global_pool_max_takes_the_largest_value_of_each_channel(name):
    torch.manual_seed(0)
    enc = create_encoder(name, global_pool="max").eval()
    x = images()
    with torch.no_grad():
        feats = enc.forward_features(x)
        out = enc(x)
    torch.testing.assert_close(out, feats.flatten(2).max(dim=2).values)
    assert enc.global_pool == "max" and create_encoder(name).global_pool == "avg"


def test_bad_constructor_arguments_raise_parameter_error():
    with pytest.raises(ParameterError, match=r"output_stride.*Found: 8"):
        create_encoder("resnet18", output_stride=8)
    with pytest.raises(ParameterError, match=r"channels.*Found: 2"):
        create_encoder("small-cnn", channels=2)
    with pytest.raises(ParameterError, match=r"pretrained.*'yes'"):
        create_encoder("resnet18", pretrained="yes")
    with pytest.raises(ParameterError, match=r"global_pool.*'sum'"):
        create_encoder("small-cnn", global_pool="sum")


def test_bad_features_for_head_raise_parameter_error(small):
    with pytest.raises(ParameterError, match=r"\(B, 32, H', W'\).*\(2, 31, 4, 4\)"):
        small.forward_head(torch.rand(2, 31, 4, 4))


def test_pretrained_without_network_says_how_to_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty cache, so nothing is found there
    calls = []

    def offline(url, *args, **kwargs):
        calls.append((url, kwargs))
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(DataError) as info:
        create_encoder("resnet18", pretrained=True)
    message = str(info.value)
    assert isinstance(info.value, XmodalError)
    assert "could not be fetched" in message and "resnet18" in message
    assert "TORCH_HOME" in message and "pretrained=False" in message
    assert "no route to host" in message
    assert calls[0][0].endswith(".pth") and calls[0][1]["weights_only"] is True


def test_pretrained_loads_the_fetched_weights(monkeypatch):
    torch.manual_seed(1)
    import torchvision

    reference = torchvision.models.resnet18(weights=None).state_dict()
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", lambda *a, **k: reference)
    enc = create_encoder("resnet18", pretrained=True, output_stride=16)
    torch.testing.assert_close(enc.body.conv1.weight, reference["conv1.weight"])
    torch.testing.assert_close(enc.body.layer3[0].conv1.weight, reference["layer3.0.conv1.weight"])
    assert not hasattr(enc.body, "layer4")


def test_the_factored_cnns_shape_stream_is_colour_blind():
    """Its shape stream reads a grey projection: two images whose colours differ but whose
    grey levels agree give it the same map (in eval, the projection is the channel mean);
    the colour stream tells them apart. Training draws a projection per image."""
    enc = create_encoder("factored-cnn", channels=16).eval()
    assert enc.streams == {"colour": (0, 8), "shape": (8, 16)}
    a = images(1, 32)
    b = a[:, [1, 2, 0]]  # the channels rotated: the same mean, other colours
    with torch.no_grad():
        fa, fb = enc.forward_features(a), enc.forward_features(b)
    torch.testing.assert_close(fa[:, 8:], fb[:, 8:])
    assert not torch.allclose(fa[:, :8], fb[:, :8], atol=1e-4)
    enc.train()
    torch.manual_seed(0)
    first = enc.forward_features(a)[:, 8:]
    assert not torch.allclose(first, enc.forward_features(a)[:, 8:], atol=1e-4)
    with pytest.raises(ParameterError, match="channels must be even"):
        create_encoder("factored-cnn", channels=9)


@pytest.mark.parametrize("name", ["small-cnn", "factored-cnn"])
def test_the_pyramid_ends_in_the_final_map(name):
    torch.manual_seed(0)
    enc = create_encoder(name, channels=16).eval()
    images = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        stages = enc.forward_pyramid(images)
        final = enc.forward_features(images)
    assert sorted(stages) == [2, 4, 8]
    assert [tuple(m.shape) for m in stages.values()] == [(2, 4, 16, 16), (2, 8, 8, 8),
                                                         (2, 16, 4, 4)]  # fmt: skip
    torch.testing.assert_close(stages[8], final)


def test_an_encoder_without_stages_says_so():
    enc = create_encoder("resnet18", pretrained=False)
    with pytest.raises(ParameterError, match="final map only"):
        enc.forward_pyramid(torch.rand(1, 3, 64, 64))
