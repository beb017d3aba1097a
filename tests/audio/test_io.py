"""xmodal.audio.io: load/save round trips, parity with librosa.load, and bad files.

Every file is written in the test under ``tmp_path``; nothing is committed.
"""

from __future__ import annotations

import math
import os
import stat

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch

from xmodal.audio import available_formats, info, load, resample, save
from xmodal.errors import DataError, ParameterError, XmodalError

SR = 16000
PCM16_STEP = 2.0**-15  # one least-significant bit of 16-bit PCM in [-1, 1)
PCM24_STEP = 2.0**-23


def _noise(n: int, seed: int = 0, scale: float = 0.1) -> np.ndarray:
    return scale * np.random.default_rng(seed).standard_normal(n)


def _float_wav(path, y: np.ndarray, sr: int = SR) -> np.ndarray:
    """Write ``y`` ((time,) or (channels, time)) as 32-bit float WAV; return what it holds."""
    sf.write(path, np.asarray(y).T, sr, subtype="FLOAT")
    return np.asarray(y).astype(np.float32)


# --- round trips -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["noise", "tone", "chirp"])
def test_wav_pcm16_round_trip_within_one_lsb(tmp_path, request, name):
    y = request.getfixturevalue(name)
    assert np.abs(y).max() <= 0.5
    path = save(tmp_path / "a.wav", y, SR, subtype="PCM_16")
    z, sr = load(path, dtype=torch.float64)
    assert sr == SR
    assert z.shape == (len(y),)
    assert info(path).subtype == "PCM_16"
    err = np.abs(z.numpy() - y).max()
    assert err <= PCM16_STEP
    assert err > 0  # it really was quantised, not stored as floats


def test_wav_float_round_trip_is_exact(tmp_path, noise):
    path = save(tmp_path / "a.wav", noise.astype(np.float32), SR, subtype="FLOAT")
    z, _ = load(path, dtype=torch.float32)
    np.testing.assert_array_equal(z.numpy(), noise.astype(np.float32))


@pytest.mark.parametrize(("subtype", "step"), [("PCM_16", PCM16_STEP), ("PCM_24", PCM24_STEP)])
def test_flac_round_trip_within_one_lsb(tmp_path, chirp, subtype, step):
    path = save(tmp_path / "a.flac", chirp, SR, subtype=subtype)
    assert info(path).format == "FLAC"
    assert info(path).subtype == subtype
    z, sr = load(path, dtype=torch.float64)
    assert sr == SR
    assert z.shape == chirp.shape
    assert np.abs(z.numpy() - chirp).max() <= step


def test_ogg_vorbis_round_trip_keeps_length_and_shape(tmp_path, chirp):
    path = save(tmp_path / "a.ogg", chirp, SR)
    assert (info(path).format, info(path).subtype) == ("OGG", "VORBIS")
    z, sr = load(path, dtype=torch.float64)
    assert sr == SR
    # libsndfile trims Vorbis' priming and padding: the length comes back exactly.
    assert z.shape == chirp.shape
    assert np.corrcoef(z.numpy(), chirp)[0, 1] > 0.99


def test_stereo_round_trip_and_mono_average(tmp_path):
    y = np.stack([_noise(8000, seed=1), 0.5 * np.sin(2 * math.pi * 440 * np.arange(8000) / SR)])
    stored = _float_wav(tmp_path / "st.wav", y)
    z, _ = load(tmp_path / "st.wav", mono=False, dtype=torch.float64)
    assert z.shape == (2, 8000)
    np.testing.assert_array_equal(z.numpy(), stored.astype(np.float64))
    m, _ = load(tmp_path / "st.wav", mono=True, dtype=torch.float64)
    assert m.shape == (8000,)
    np.testing.assert_array_equal(m.numpy(), (stored[0].astype(np.float64) + stored[1]) / 2)


def test_save_stereo_channels_time_layout(tmp_path):
    y = np.stack([_noise(4000, seed=2), _noise(4000, seed=3)])
    path = save(tmp_path / "st.flac", y, SR, subtype="PCM_24")
    meta = info(path)
    assert (meta.channels, meta.frames) == (2, 4000)
    z, _ = load(path, mono=False, dtype=torch.float64)
    assert np.abs(z.numpy() - y).max() <= PCM24_STEP


def test_mono_file_with_mono_false_is_one_channel(tmp_path, tone):
    save(tmp_path / "a.wav", tone, SR)
    z, _ = load(tmp_path / "a.wav", mono=False)
    assert z.shape == (1, len(tone))


def test_dtype_float32_and_float64(tmp_path, noise):
    save(tmp_path / "a.wav", noise, SR)
    z32, _ = load(tmp_path / "a.wav", dtype=torch.float32)
    z64, _ = load(tmp_path / "a.wav", dtype=torch.float64)
    assert z32.dtype == torch.float32
    assert z64.dtype == torch.float64
    # k / 32768 is exact in both precisions, so the two reads agree bit for bit.
    np.testing.assert_array_equal(z32.numpy(), z64.numpy().astype(np.float32))
    assert z32.abs().max() <= 1.0


@pytest.mark.parametrize(
    ("offset", "duration", "sl"),
    [
        (0.25, 0.5, slice(4000, 12000)),
        (0.25, None, slice(4000, None)),
        (0.0, 0.125, slice(0, 2000)),
        (1.0, 5.0, slice(16000, None)),  # asks for more than is left: gets the rest
        (0.1, 0.2, slice(1600, 4800)),
    ],
)
def test_offset_and_duration_select_the_slice(tmp_path, noise, offset, duration, sl):
    stored = _float_wav(tmp_path / "a.wav", noise)
    z, _ = load(tmp_path / "a.wav", offset=offset, duration=duration)
    np.testing.assert_array_equal(z.numpy(), stored[sl])


@pytest.mark.parametrize(("ext", "subtype"), [("flac", "PCM_24"), ("ogg", None)])
def test_offset_and_duration_equal_slice_of_full_read(tmp_path, chirp, ext, subtype):
    path = save(tmp_path / f"a.{ext}", chirp, SR, subtype=subtype)
    full, _ = load(path)
    part, _ = load(path, offset=0.25, duration=0.5)
    np.testing.assert_array_equal(part.numpy(), full[4000:12000].numpy())


def test_sr_none_keeps_file_rate(tmp_path):
    y = _noise(22050 // 2)
    save(tmp_path / "a.wav", y, 22050)
    z, sr = load(tmp_path / "a.wav", sr=None)
    assert sr == 22050
    assert z.shape == y.shape
    z, sr = load(tmp_path / "a.wav", sr=22050)  # asking for the file's own rate: no change
    assert sr == 22050
    assert z.shape == y.shape


@pytest.mark.parametrize("target", [22050, 8000, 44100])
def test_load_resampled_equals_librosa_load(tmp_path, target):
    path = tmp_path / "a.wav"
    _float_wav(path, _noise(SR, seed=4))
    ref, ref_sr = librosa.load(path, sr=target, res_type="soxr_hq")
    z, sr = load(path, sr=target)
    assert sr == ref_sr == target
    assert z.dtype == torch.float32
    assert z.shape == ref.shape
    np.testing.assert_allclose(z.numpy(), ref, rtol=0, atol=1e-6)


def test_load_resampled_speech_equals_librosa_load(tmp_path, speech):
    path = tmp_path / "speech.wav"
    _float_wav(path, speech[: 2 * SR])  # 2 s: a whole number of samples at 22050 Hz
    ref, _ = librosa.load(path, sr=22050, res_type="soxr_hq")
    z, _ = load(path, sr=22050)
    assert z.shape == ref.shape
    np.testing.assert_allclose(z.numpy(), ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize("n", [16000, 12345, 1000, 24001])
@pytest.mark.parametrize("target", [22050, 11025])
def test_load_resampled_length_matches_librosa(tmp_path, n, target):
    # librosa.resample returns ceil(n * target / orig) samples (it zero-pads soxr's output).
    path = tmp_path / "a.wav"
    _float_wav(path, _noise(n, seed=5))
    ref, _ = librosa.load(path, sr=target, res_type="soxr_hq")
    z, _ = load(path, sr=target)
    assert len(ref) == math.ceil(n * target / SR)
    assert z.shape == ref.shape


@pytest.mark.parametrize("n", [16000, 1000])
def test_resample_equals_librosa_resample(n):
    y = _noise(n, seed=6)
    ref = librosa.resample(y, orig_sr=SR, target_sr=22050, res_type="soxr_hq")
    out = resample(torch.from_numpy(y), orig_sr=SR, target_sr=22050)
    assert out.dtype == torch.float64
    assert out.shape == ref.shape
    np.testing.assert_allclose(out.numpy(), ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("target", [22050, 8000, 44100])
def test_resample_keeps_a_tones_frequency(tone, target):
    out = resample(torch.from_numpy(tone), orig_sr=SR, target_sr=target).numpy()
    assert len(out) == target  # 1 s stays 1 s
    spectrum = np.abs(np.fft.rfft(out * np.hanning(len(out))))
    peak_hz = np.argmax(spectrum) * target / len(out)
    assert abs(peak_hz - 1000.0) <= target / len(out)  # within one bin (1 Hz)
    # a 0.5-amplitude sine keeps its amplitude (away from the edges soxr tapers)
    mid = out[target // 4 : 3 * target // 4]
    assert np.abs(mid).max() == pytest.approx(0.5, abs=5e-3)


def test_resample_batched_equals_per_item():
    x = torch.from_numpy(np.random.default_rng(7).standard_normal((2, 3, 4000)))
    out = resample(x, orig_sr=SR, target_sr=22050)
    assert out.shape[:2] == (2, 3)
    for i in range(2):
        for j in range(3):
            one = resample(x[i, j], orig_sr=SR, target_sr=22050)
            torch.testing.assert_close(out[i, j], one, rtol=0, atol=0)


def test_resample_keeps_dtype_and_same_rate_is_identity():
    x = torch.from_numpy(_noise(1600).astype(np.float32))
    out = resample(x, orig_sr=SR, target_sr=8000)
    assert out.dtype == torch.float32
    assert out.shape == (800,)
    assert resample(x, orig_sr=SR, target_sr=SR) is x


def test_resample_bad_quality():
    with pytest.raises(ParameterError, match="quality.*'best'"):
        resample(torch.zeros(100), orig_sr=SR, target_sr=8000, quality="best")


# --- atomic save -----------------------------------------------------------------------


def test_save_leaves_no_temp_files(tmp_path, tone):
    out = save(tmp_path / "a.wav", tone, SR)
    assert out == tmp_path / "a.wav"
    assert sorted(os.listdir(tmp_path)) == ["a.wav"]


def test_save_replaces_an_existing_file(tmp_path, noise, tone):
    path = tmp_path / "a.wav"
    save(path, noise, SR)  # 1.5 s
    save(path, tone, SR)  # 1 s
    z, _ = load(path, dtype=torch.float64)
    assert z.shape == tone.shape
    assert np.abs(z.numpy() - tone).max() <= PCM16_STEP
    assert sorted(os.listdir(tmp_path)) == ["a.wav"]


def test_save_creates_parent_directories(tmp_path, tone):
    path = tmp_path / "x" / "y" / "z.flac"
    save(path, tone, SR)
    assert path.is_file()
    assert info(path).frames == len(tone)


def test_failed_write_leaves_no_temp_file(tmp_path):
    # FLAC holds at most 8 channels: libsndfile refuses 9 after the temp file exists.
    with pytest.raises((XmodalError, RuntimeError)):
        save(tmp_path / "nine.flac", np.full((9, 1000), 0.1), SR)
    assert os.listdir(tmp_path) == []


def test_failed_write_raises_xmodal_error_naming_the_file(tmp_path):
    # errors.py: every error a user can cause is an XmodalError.
    with pytest.raises(XmodalError, match="nine.flac"):
        save(tmp_path / "nine.flac", np.full((9, 1000), 0.1), SR)


def test_saved_file_has_the_same_permissions_as_a_plain_write(tmp_path, tone):
    # An atomic write must not leave the file more private than soundfile.write would.
    sf.write(tmp_path / "plain.wav", tone, SR)
    save(tmp_path / "ours.wav", tone, SR)
    plain = stat.S_IMODE(os.stat(tmp_path / "plain.wav").st_mode)
    ours = stat.S_IMODE(os.stat(tmp_path / "ours.wav").st_mode)
    assert oct(ours) == oct(plain)


def test_save_peak_above_one_is_fine_as_float(tmp_path, tone):
    y = 1.5 * tone
    save(tmp_path / "loud.wav", y, SR, subtype="FLOAT")
    z, _ = load(tmp_path / "loud.wav", dtype=torch.float64)
    np.testing.assert_array_equal(z.numpy(), y.astype(np.float32))


def test_save_format_argument_overrides_extension(tmp_path, tone):
    path = save(tmp_path / "a.bin", tone, SR, format="flac")
    assert info(path).format == "FLAC"


def test_available_formats_includes_wav_flac_ogg():
    formats = available_formats()
    assert {"WAV", "FLAC", "OGG"} <= set(formats)
    assert "Microsoft" in formats["WAV"]


# --- bad files -------------------------------------------------------------------------


def _write_pcm16_wav(path, n: int = 16000) -> bytes:
    sf.write(path, _noise(n, seed=8), SR, subtype="PCM_16")
    return path.read_bytes()


def test_missing_file(tmp_path):
    path = tmp_path / "nope.wav"
    with pytest.raises(DataError, match="nope.wav.*no such file"):
        load(path)
    with pytest.raises(DataError, match="nope.wav"):
        info(path)


def test_directory(tmp_path):
    d = tmp_path / "adir.wav"
    d.mkdir()
    with pytest.raises(DataError, match="adir.wav.*not a regular file"):
        load(d)


def test_text_file_named_wav(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("these are not samples\n" * 20)
    with pytest.raises(DataError, match="notes.wav"):
        load(path)
    with pytest.raises(DataError, match="notes.wav"):
        info(path)


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.flac"
    path.write_bytes(np.random.default_rng(9).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(DataError, match="noise.flac"):
        load(path)


def test_wav_truncated_in_its_data(tmp_path):
    full = _write_pcm16_wav(tmp_path / "full.wav")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(full[: len(full) // 2])
    # libsndfile alone reads what is there without complaint ...
    assert len(sf.read(cut)[0]) < 16000
    # ... load compares with the RIFF data chunk's declared size.
    with pytest.raises(DataError, match=r"cut\.wav.*truncated.*32000"):
        load(cut)


def test_wav_cut_inside_its_header(tmp_path):
    full = _write_pcm16_wav(tmp_path / "full.wav")
    cut = tmp_path / "head.wav"
    cut.write_bytes(full[:30])
    with pytest.raises(DataError, match="head.wav"):
        load(cut)


@pytest.mark.parametrize("ext", ["flac", "ogg"])
def test_compressed_file_cut_in_half(tmp_path, chirp, ext):
    full = save(tmp_path / f"full.{ext}", chirp, SR).read_bytes()
    cut = tmp_path / f"cut.{ext}"
    cut.write_bytes(full[: len(full) // 2])
    with pytest.raises(DataError, match=f"cut.{ext}"):
        load(cut)


def test_zero_frame_wav(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0), SR, subtype="PCM_16")
    assert sf.info(path).frames == 0
    with pytest.raises(DataError, match="empty.wav.*no samples"):
        load(path)


def test_float_wav_with_nan(tmp_path):
    y = _noise(1000).astype(np.float32)
    y[500] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, y, SR, subtype="FLOAT")
    with pytest.raises(DataError, match="nan.wav.*NaN"):
        load(path)


# --- bad arguments ---------------------------------------------------------------------


@pytest.fixture
def wav(tmp_path, tone):
    return save(tmp_path / "tone.wav", tone, SR)


def test_offset_past_the_end(wav):
    with pytest.raises(ParameterError, match=r"offset=2\.5.*past the end.*tone\.wav"):
        load(wav, offset=2.5)
    with pytest.raises(ParameterError, match=r"offset=1\.0"):
        load(wav, offset=1.0)  # exactly at the end: nothing left


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"duration": 0}, r"duration.*Found: 0"),
        ({"duration": -1.0}, r"duration.*Found: -1"),
        ({"offset": -0.5}, r"offset.*Found: -0.5"),
        ({"sr": 0}, r"sr.*Found: 0"),
        ({"sr": 22050.5}, r"sr.*Found: 22050.5"),
        ({"dtype": torch.int16}, r"dtype.*int16"),
        ({"mono": "yes"}, r"mono.*'yes'"),
    ],
)
def test_load_bad_arguments(wav, kwargs, pattern):
    with pytest.raises(ParameterError, match=pattern):
        load(wav, **kwargs)


def test_load_path_not_a_path():
    with pytest.raises(ParameterError, match="path.*123"):
        load(123)


def test_save_path_not_a_path(tone):
    with pytest.raises(ParameterError, match="path.*None"):
        save(None, tone, SR)


def test_save_unknown_extension_lists_formats(tmp_path, tone):
    with pytest.raises(ParameterError, match="XYZ") as err:
        save(tmp_path / "a.xyz", tone, SR)
    assert "a.xyz" in str(err.value)
    assert all(name in str(err.value) for name in ("WAV", "FLAC", "OGG"))
    assert os.listdir(tmp_path) == []


def test_save_no_extension(tmp_path, tone):
    with pytest.raises(ParameterError, match="no extension"):
        save(tmp_path / "noext", tone, SR)


def test_save_bad_subtype(tmp_path, tone):
    with pytest.raises(ParameterError, match="'PCM_99'.*WAV.*PCM_16"):
        save(tmp_path / "a.wav", tone, SR, subtype="PCM_99")
    with pytest.raises(ParameterError, match="'FLOAT'.*FLAC"):
        save(tmp_path / "a.flac", tone, SR, subtype="FLOAT")
    assert os.listdir(tmp_path) == []


def test_save_non_string_subtype(tmp_path, tone):
    with pytest.raises(ParameterError, match="subtype.*16"):
        save(tmp_path / "a.wav", tone, SR, subtype=16)


@pytest.mark.parametrize(("ext", "subtype"), [("wav", "PCM_16"), ("flac", None), ("ogg", None)])
def test_save_peak_above_one_to_integer_subtype(tmp_path, tone, ext, subtype):
    with pytest.raises(ParameterError, match=r"peak of 1\.5"):
        save(tmp_path / f"loud.{ext}", 3 * tone, SR, subtype=subtype)
    assert os.listdir(tmp_path) == []


def test_save_bad_arrays(tmp_path, tone):
    with pytest.raises(ParameterError, match=r"\(2, 3, 100\)"):
        save(tmp_path / "a.wav", np.zeros((2, 3, 100)), SR)
    y = tone.copy()
    y[10] = np.nan
    with pytest.raises(ParameterError, match="y contains 1 non-finite.*nan"):
        save(tmp_path / "a.wav", y, SR)
    with pytest.raises(ParameterError, match="y must have dtype.*int16"):
        save(tmp_path / "a.wav", (tone * 32767).astype(np.int16), SR)
    with pytest.raises(ParameterError, match="sr.*Found: 0"):
        save(tmp_path / "a.wav", tone, 0)
    assert os.listdir(tmp_path) == []


def test_load_clip_cuts_or_pads_to_the_asked_length(tmp_path):
    from xmodal.audio.io import load_clip

    t = np.arange(2 * 44100) / 44100
    save(tmp_path / "long.wav", 0.5 * np.sin(2 * np.pi * 440 * t), 44100)
    save(tmp_path / "short.flac", 0.5 * np.sin(2 * np.pi * 440 * t[:22050]), 44100)
    whole, _ = load(tmp_path / "long.wav", sr=16000)
    clip = load_clip(tmp_path / "long.wav", sr=16000, n_samples=16000)
    assert clip.shape == (16000,)
    assert torch.allclose(clip[:15900], whole[:15900], atol=1e-3)  # the start, resampled alike
    short = load_clip(tmp_path / "short.flac", sr=16000, n_samples=16000)
    assert short.shape == (16000,) and float(short[8100:].abs().max()) == 0.0
    assert float(short[:7900].abs().max()) > 0.4
    with pytest.raises(ParameterError, match="n_samples"):
        load_clip(tmp_path / "long.wav", sr=16000, n_samples=0)
