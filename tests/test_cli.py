"""The `xmodal` command, run in-process through `main(argv)` and once as a real process."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

import xmodal
from xmodal.audio import functional as F
from xmodal.cli import main


@pytest.fixture
def speech_wav(tmp_path, speech, sr):
    path = tmp_path / "speech.wav"
    sf.write(path, speech, sr, subtype="FLOAT")
    return path


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"xmodal {xmodal.__version__}"
    for argv in (["--help"], ["audio", "--help"], ["audio", "show", "--help"],
                 ["audio", "features", "--help"], ["audio", "griffinlim", "--help"]):  # fmt: skip
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 0
        assert "usage: xmodal" in capsys.readouterr().out


def test_missing_subcommand_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["audio"])
    assert exit_.value.code == 2
    assert "VERB" in capsys.readouterr().err


def test_features_equal_the_library(tmp_path, speech_wav, speech, sr, capsys):
    for kind, expected in (
        ("mfcc", F.mfcc(torch.from_numpy(speech).float(), sr=sr)),
        ("mel", F.melspectrogram(torch.from_numpy(speech).float(), sr=sr)),
        ("spectrogram", F.spectrogram(torch.from_numpy(speech).float())),
    ):
        out = tmp_path / f"{kind}.npy"
        assert main(["audio", "features", str(speech_wav), "--kind", kind, "--out", str(out)]) == 0
        got = np.load(out)
        assert got.shape == tuple(expected.shape)
        np.testing.assert_allclose(got, expected.numpy(), rtol=1e-5,
                                   atol=1e-5 * float(expected.abs().max()))  # fmt: skip
        assert f"{kind} of shape {got.shape}" in capsys.readouterr().out


def test_features_db_and_options(tmp_path, speech_wav):
    out = tmp_path / "mel.npy"
    argv = [
        "audio",
        "features",
        str(speech_wav),
        "--kind",
        "mel",
        "--db",
        "--n-mels",
        "40",
        "--n-fft",
        "1024",
        "--win-length",
        "1024",
        "--hop-length",
        "256",
        "--out",
        str(out),
    ]
    assert main(argv) == 0  # fmt: skip
    got = np.load(out)
    assert got.shape[0] == 40
    assert got.max() - got.min() == pytest.approx(80.0, abs=1e-3)  # top_db floor, in dB


def test_show_writes_a_figure(tmp_path, speech_wav, capsys):
    out = tmp_path / "figs" / "speech.png"
    assert main(["audio", "show", str(speech_wav), "--out", str(out), "--dpi", "40"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "wrote" in capsys.readouterr().out


def test_griffinlim_round_trip(tmp_path, speech_wav, speech, sr, capsys):
    out = tmp_path / "rebuilt.wav"
    assert main(["audio", "griffinlim", str(speech_wav), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    sc = float(printed.split("spectral convergence:")[1].split()[0])
    assert 0 < sc < 0.2
    y_hat, sr_out = sf.read(out)
    assert sr_out == sr and len(y_hat) == len(speech)
    # The magnitude survives the round trip; the phase (so the samples) need not.
    S = F.spectrogram(torch.from_numpy(speech), power=1)
    measured = F.spectral_convergence(S, torch.from_numpy(y_hat)).item()
    assert measured < 0.2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["audio", "show", "/no/such/file.wav", "--out", "x.png"], "no such file"),
        (["audio", "features", "{wav}", "--kind", "mel", "--out", "x.txt"], "must end in .npy"),
        (["audio", "features", "{wav}", "--kind", "mel", "--n-mels", "400", "--out", "{tmp}/m.npy"],
         "n_mels=400"),
        (["audio", "features", "{wav}", "--kind", "mfcc", "--hop-length", "0", "--out",
          "{tmp}/m.npy"], "hop_length"),
        (["audio", "features", "{wav}", "--kind", "mfcc", "--n-fft", "256", "--out",
          "{tmp}/m.npy"], "win_length=400, n_fft=256"),
        (["audio", "griffinlim", "{silent}", "--out", "{tmp}/g.wav"], "silent"),
        (["audio", "griffinlim", "{wav}", "--momentum", "1.5", "--out", "{tmp}/g.wav"],
         r"momentum must be in range \[0, 1\). Found: 1.5"),
        (["audio", "show", "{text}", "--out", "{tmp}/x.png"], "cannot read as audio"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_status_1(argv, message, tmp_path, speech_wav, capsys):
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(8000), 16000)
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio\n" * 50)
    argv = [a.format(wav=speech_wav, silent=silent, text=text, tmp=tmp_path) for a in argv]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("xmodal: error: ")
    assert len(err.strip().splitlines()) == 1
    assert __import__("re").search(message, err)
    assert "Traceback" not in err


def test_installed_command_runs(tmp_path):
    done = subprocess.run([sys.executable, "-m", "xmodal", "--version"], capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert done.returncode == 0
    assert done.stdout.strip() == f"xmodal {xmodal.__version__}"
