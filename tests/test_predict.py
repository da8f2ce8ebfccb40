"""python -m cxr_tf.predict: any image file through the shared decoding, the same numbers from a run,
its .keras and its SavedModel export, bad files listed (never a crash), CSV paths kept inside their root."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from tests import image_factory
from tests.conftest import PHANTOM_CLASSES
from tests.serving_util import THRESHOLDS, encoded_variants, phantom_grays, reference_probabilities, run_with_thresholds

from cxr_tf import cli, predict as predict_cli
from cxr_tf.training import runs
from cxr_tf.serving import export, predict

BAD = {"corrupt.png": "corrupt", "text.jpg": "not an image", "bomb.png": "too large", "tiny.png": "too small"}


@pytest.fixture(scope="module")
def run(phantom_run, tmp_path_factory) -> runs.Run:
    return run_with_thresholds(phantom_run, tmp_path_factory.mktemp("predict"))


@pytest.fixture(scope="module")
def models(run) -> dict[str, Path]:
    """``--model`` paths of the three kinds: the run, its .keras file and its SavedModel."""
    out = run.path / "export"
    export.export(run, "keras", out / "keras")
    export.export(run, "savedmodel", out / "savedmodel")
    return {"run": run.path, "keras": out / "keras" / export.KERAS_FILE, "savedmodel": out / "savedmodel"}


@pytest.fixture(scope="module")
def images(phantom_records, tmp_path_factory) -> Path:
    """A directory of good images of every kind, unusable files and a file that is not looked at."""
    root = tmp_path_factory.mktemp("images")
    gray = phantom_grays(phantom_records, 1)[0]
    for name, data in encoded_variants(gray).items():
        (root / "nested" if name.endswith(".jpg") else root).mkdir(exist_ok=True)
        (root / "nested" / name if name.endswith(".jpg") else root / name).write_bytes(data)
    (root / "scan.dcm").write_bytes(image_factory.dicom(gray.astype(np.uint16) * 16))
    (root / "corrupt.png").write_bytes(image_factory.png(gray)[:150])
    (root / "text.jpg").write_text("not an image\n")
    (root / "bomb.png").write_bytes(image_factory.png_bomb())
    (root / "tiny.png").write_bytes(image_factory.png(gray[:8, :8]))
    (root / "notes.txt").write_text("ignored: not an image suffix\n")
    return root


def read_output(path: Path, fmt: str) -> tuple[dict[str, dict], dict]:
    """{path: {"probabilities": [K] | None, "labels": [K] | None, "error": str | None}} and the summary."""
    if fmt == "json":
        document = json.loads(path.read_text())
        assert document["classes"] == PHANTOM_CLASSES and document["thresholds"] == THRESHOLDS
        return ({p["path"]: {"probabilities": [p["probabilities"][c] for c in PHANTOM_CLASSES] if "error" not in p
                             else None, "labels": [p["labels"][c] for c in PHANTOM_CLASSES] if "error" not in p
                             else None, "error": p.get("error")} for p in document["predictions"]},
                document["summary"])
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    out = {row["path"]: {"probabilities": None if row["error"] else
                         [float(row[f"prob_{c}"]) for c in PHANTOM_CLASSES],
                         "labels": None if row["error"] else [int(row[f"pred_{c}"]) for c in PHANTOM_CLASSES],
                         "error": row["error"] or None} for row in rows}
    failed = sum(r["error"] is not None for r in out.values())
    return out, {"images": len(rows), "predicted": len(rows) - failed, "failed": failed}


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_predict_a_directory_predicts_good_images_and_lists_bad_ones(run, models, images, tmp_path, fmt):
    out = tmp_path / f"predictions.{fmt}"
    assert cli.run(predict_cli.main, ["--model", str(models["savedmodel"]), str(images), "--format", fmt,
                                      "--out", str(out), "--batch-size", "4"]) == 0
    results, summary = read_output(out, fmt)
    good = sorted(p for p in images.rglob("*") if p.is_file() and p.suffix != ".txt" and p.name not in BAD)
    assert list(results) == [str(p) for p in sorted(good + [images / n for n in BAD],
                                                    key=lambda p: p.relative_to(images).as_posix())]
    assert summary == {"images": len(good) + len(BAD), "predicted": len(good), "failed": len(BAD)}
    for name, reason in BAD.items():
        assert reason in results[str(images / name)]["error"]
    model = run.load_model()
    thresholds = np.array([THRESHOLDS[c] for c in PHANTOM_CLASSES])
    for path in good:
        result = results[str(path)]
        assert result["error"] is None
        np.testing.assert_allclose(result["probabilities"],
                                   reference_probabilities(run, model, path.read_bytes(), path.name), atol=1e-5)
        assert result["labels"] == (np.array(result["probabilities"]) >= thresholds).astype(int).tolist()


def test_predictions_agree_across_run_keras_and_savedmodel(models, images):
    items = predict.collect([images])
    results = {}
    for kind, path in models.items():
        model = predict.load_model(path)
        assert model.metadata.classes == PHANTOM_CLASSES and model.metadata.thresholds == THRESHOLDS
        results[kind] = predict.predict(model, items, batch_size=3)
    probabilities = {kind: np.array([p.probabilities[c] for p in preds if p.error is None for c in PHANTOM_CLASSES])
                     for kind, preds in results.items()}
    assert probabilities["run"].size == (len(items) - len(BAD)) * len(PHANTOM_CLASSES)
    np.testing.assert_allclose(probabilities["keras"], probabilities["run"], atol=1e-5)
    np.testing.assert_allclose(probabilities["savedmodel"], probabilities["run"], atol=1e-5)


def test_csv_paths_resolve_against_the_csv_directory_and_never_escape_it(models, images, tmp_path):
    table = images / "nested" / "list.csv"
    (images.parent / "outside.png").write_bytes((images / "gray.png").read_bytes())
    table.write_text("path,note\ngray.jpg,inside\n../gray.png,escapes\n../../outside.png,escapes\n"
                     "/etc/hostname,absolute\nmissing.png,absent\n")
    out = tmp_path / "predictions.json"
    assert cli.run(predict_cli.main, ["--model", str(models["keras"]), str(table), "--out", str(out)]) == 0
    results, summary = read_output(out, "json")
    assert results["gray.jpg"]["error"] is None
    assert "escapes the image root" in results["../gray.png"]["error"]
    assert "escapes the image root" in results["../../outside.png"]["error"]
    assert "absolute path" in results["/etc/hostname"]["error"]
    assert results["missing.png"]["error"] == "missing file"
    assert summary == {"images": 5, "predicted": 1, "failed": 4}


def test_every_image_failing_exits_1_with_the_reasons_written(models, images, tmp_path):
    out = tmp_path / "predictions.csv"
    assert cli.run(predict_cli.main, ["--model", str(models["run"]), str(images / "text.jpg"),
                                      str(images / "corrupt.png"), "--format", "csv", "--out", str(out)]) == 1
    results, summary = read_output(out, "csv")
    assert summary == {"images": 2, "predicted": 0, "failed": 2}
    assert all(r["error"] for r in results.values())


@pytest.mark.parametrize("mistake", ["missing input", "csv without path column", "not a model", "no images"])
def test_user_mistakes_exit_2(models, images, tmp_path, mistake):
    (tmp_path / "labels.csv").write_text("file\ngray.png\n")
    (tmp_path / "empty").mkdir()
    model, inputs = str(models["keras"]), [str(images / "gray.png")]
    if mistake == "missing input":
        inputs = [str(images / "absent.png")]
    elif mistake == "csv without path column":
        inputs = [str(tmp_path / "labels.csv")]
    elif mistake == "not a model":
        model = str(images)
    else:
        inputs = [str(tmp_path / "empty")]
    assert cli.run(predict_cli.main, ["--model", model, *inputs]) == 2
