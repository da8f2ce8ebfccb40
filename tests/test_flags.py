"""Every command refuses an impossible number before doing anything: one line naming the flag, exit 2."""

from __future__ import annotations

import pytest

from cxr_tf import build_records, cli, demo, evaluate, explain, fit, lr_find, predict, synth


@pytest.mark.parametrize("command, argv, message", [
    (fit, ["--records", "r", "--steps-per-epoch", "-3"], "--steps-per-epoch -3: must be >= 1"),
    (fit, ["--records", "r", "--validation-steps", "0"], "--validation-steps 0: must be >= 1"),
    (fit, ["--records", "r", "--lr", "nan"], "--lr nan: must be a finite number > 0"),
    (fit, ["--records", "r", "--lr", "-1"], "--lr -1.0: must be > 0"),
    (fit, ["--records", "r", "--base-lr", "inf"], "--base-lr inf: must be a finite number > 0"),
    (fit, ["--records", "r", "--fine-tune-lr", "0"], "--fine-tune-lr 0.0: must be > 0"),
    (fit, ["--records", "r", "--epochs", "0"], "--epochs 0: must be >= 1"),
    (fit, ["--records", "r", "--dropout", "1.5"], "--dropout 1.5: must be in [0, 1)"),
    (fit, ["--records", "r", "--batch-size", "0"], "--batch-size 0: must be >= 1"),
    (fit, ["--records", "r", "--patience", "-1"], "--patience -1: must be >= 0"),
    (fit, ["--records", "r", "--image-size", "100000"], "--image-size 100000: must be between 16 and 4096"),
    (fit, ["--records", "r", "--seed", "-1"], "--seed -1: must be between 0 and 4294967295"),
    (lr_find, ["--records", "r", "--max-lr", "nan"], "--max-lr nan"),
    (build_records, ["--dataset", "nih", "--out", "o", "--shard-mb", "nan"], "--shard-mb nan: must be a finite"),
    (build_records, ["--dataset", "nih", "--out", "o", "--image-size", "100000"], "--image-size 100000"),
    (build_records, ["--dataset", "nih", "--out", "o", "--seed", "-1"], "--seed -1"),
    (build_records, ["--dataset", "nih", "--out", "o", "--workers", "-1"], "--workers -1: must be >= 0"),
    (evaluate, ["--run", "r", "--resamples", "-1"], "--resamples -1: must be >= 0"),
    (evaluate, ["--run", "r", "--batch-size", "0"], "--batch-size 0: must be >= 1"),
    (predict, ["--model", "m", "x.png", "--batch-size", "0"], "--batch-size 0: must be >= 1"),
    (explain, ["--run", "r", "--records", "x", "--limit", "0"], "--limit 0: must be >= 1"),
    (synth, ["--out", "o", "--size", "100000"], "--size 100000: must be between 32 and 4096"),
    (demo, ["--epochs", "0"], "--epochs 0: must be >= 1"),
    (demo, ["--difficulty", "nan"], "--difficulty nan"),
], ids=lambda v: v.__name__.rsplit(".", 1)[-1] if hasattr(v, "__name__") else None)
def test_impossible_numbers_are_one_line_and_exit_2_before_anything_is_written(command, argv, message, tmp_path,
                                                                              monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.run(command.main, argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and message in err, err
    assert not any(tmp_path.iterdir()), "nothing written"

