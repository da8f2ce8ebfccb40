"""evaluate's predictions.csv and predict's CSV name a class's probability the same way: ``prob_<class>``."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from cxr_tf.evaluation import evaluate
from cxr_tf.models.heads import HEADS
from cxr_tf.models.metadata import ModelMetadata
from cxr_tf.pipeline.model_input import InputSpec
from cxr_tf.serving import predict

CLASSES = ["Edema", "Pleural Effusion"]


def test_evaluate_and_predict_write_the_probability_of_a_class_in_a_column_of_the_same_name(tmp_path):
    preds = evaluate.Predictions(paths=np.array(["a.png"]), patients=np.array(["p1"]),
                                 labels=np.array([[1.0, 0.0]], np.float32), mask=np.array([[True, False]]),
                                 probs=np.array([[0.75, 0.25]], np.float32))
    evaluate.write_predictions(tmp_path / "predictions.csv", preds, CLASSES)
    evaluated = pd.read_csv(tmp_path / "predictions.csv")

    meta = ModelMetadata(CLASSES, HEADS.get("multilabel"), {c: 0.5 for c in CLASSES}, "run",
                         InputSpec(32, 32, "pad", "gray1"), "cnn5", str(tmp_path), "0")
    stream = io.StringIO()
    predict.write([predict.Prediction("a.png", {"Edema": 0.75, "Pleural Effusion": 0.25},
                                      {"Edema": 1, "Pleural Effusion": 0})],
                  predict.Model(tmp_path, meta, lambda pixels: pixels), "csv", stream)
    served = pd.read_csv(io.StringIO(stream.getvalue()))

    assert list(evaluated.columns) == ["path", "patient", "label_Edema", "prob_Edema", "label_Pleural Effusion",
                                       "prob_Pleural Effusion"]
    assert list(served.columns) == ["path", "prob_Edema", "prob_Pleural Effusion", "pred_Edema",
                                    "pred_Pleural Effusion", "error"]
    probability = ["prob_Edema", "prob_Pleural Effusion"]
    np.testing.assert_allclose(served[probability].to_numpy(float), evaluated[probability].to_numpy())
    assert served[["pred_Edema", "pred_Pleural Effusion"]].to_numpy().tolist() == [[1, 0]]
