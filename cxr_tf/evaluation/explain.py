"""Grad-CAM heatmaps of a zoo model, their overlays, and the box hit rate ("pointing game") on records.

Grad-CAM (Selvaraju et al. 2017, https://arxiv.org/abs/1610.02391): the gradient of one class logit
with respect to the last convolutional feature map, averaged over the map, weights the map's channels;
the ReLU of the weighted sum, upsampled to the input, is the heatmap. Computed with TensorFlow's
``GradientTape`` on the Keras model as keras.io's Grad-CAM example does.

Coordinates: pixel ``(row i, column j)`` covers ``[j, j + 1) x [i, i + 1)``, so its centre is
``(j + 0.5, i + 0.5)``; boxes are ``xmin, ymin, xmax, ymax`` edges in the same units (as records store
them, ``cxr_tf.records.features``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import cv2
import numpy as np

from cxr_tf import reporting
from cxr_tf.io.imaging import Transform
from cxr_tf.records import features as keys

if TYPE_CHECKING:
    from cxr_tf.models.heads import Head
    from cxr_tf.training.runs import Run

# Overlays of small inputs (the 64-px phantoms) are enlarged by a whole factor to at least this side, so
# a heatmap cell and a box outline stay visible.
DISPLAY_MIN_SIDE = 256
OVERLAY_ALPHA = 0.4
BATCH_SIZE = 32
CAM_BATCH = 16  # images per Grad-CAM pass (one forward, one backward)
# Grad-CAM's resolution is its feature map's; below 7 cells a peak cannot fall inside a small box.
MIN_CAM_SIDE = 7


def feature_layer(model: Any, name: str | None = None) -> Any:
    """The layer whose output Grad-CAM weighs: ``name``, or by default the backbone's last feature map.

    Zoo models (``cxr_tf.models.build_model``) name their head layers ``head_*``; layers are in
    topological order, so walking back from the first head layer meets the backbone's output first.
    The last map at least ``MIN_CAM_SIDE`` cells wide is taken (the 7x7 final map of a 224-px
    DenseNet or ResNet, as in Grad-CAM's paper), else the last map with more than one cell: a coarser
    map cannot point inside a box (at 64 px cnn5's last map is 4x4 and its peak fell on the border of the
    phantoms' heart boxes; in the 96-px demo the 12x12 ``block4_relu`` puts 93 % of the peaks inside the
    heart box). Pooling layers are looked through (their input is the same evidence at a finer
    resolution). A ViT (``cxr_tf.models.vit``) hands the head its class token as a 1x1 map; there the
    tokens entering the last attention layer are taken (after that layer no patch token reaches the
    class token, so gradients there are zero; the choice of pytorch-grad-cam for ViTs), and
    ``grad_cam`` lays their patch tokens ``[B, 1 + g*g, D]`` out as a g x g grid.

    Raises:
        ValueError: ``name`` is not a rank-3/4 layer of the model; without ``name``, the model has no
            ``head_*`` layer or no rank-3/4 layer before it.
    """
    import keras

    if name is not None:
        layer = next((layer for layer in model.layers if layer.name == name), None)
        if layer is None or len(layer.output.shape) not in (3, 4):
            maps = [layer.name for layer in model.layers if len(layer.output.shape) == 4][-4:]
            raise ValueError(f"layer {name!r} is not a feature map of model {model.name!r}; its last ones: "
                             f"{', '.join(maps)}")
        return layer
    head = next((i for i, layer in enumerate(model.layers) if layer.name.startswith("head_")), None)
    if head is None:
        raise ValueError(f"model {model.name!r} has no head_* layer; Grad-CAM needs a cxr_tf zoo model")
    last = None
    for index in reversed(range(head)):
        layer = model.layers[index]
        shape = layer.output.shape
        # Convolutions and activations only: padding, cropping and preprocessing are not evidence maps.
        if len(shape) == 4 and tuple(shape[1:3]) != (1, 1) \
                and isinstance(layer, (keras.layers.Conv2D, keras.layers.ReLU, keras.layers.Activation)):
            if min(shape[1:3]) >= MIN_CAM_SIDE:
                return layer
            last = last or layer
        if isinstance(layer, keras.layers.MultiHeadAttention):
            tokens = next((t for t in reversed(model.layers[:index]) if len(t.output.shape) == 3), None)
            if tokens is not None:
                return tokens
    if last is None:
        raise ValueError(f"model {model.name!r} has no feature map before its head")
    return last


def grad_cam(model: Any, images: Any, class_index: int | Sequence[int], head: Head,
             layer: str | None = None) -> np.ndarray:
    """Grad-CAM heatmaps of one class, or of one class per image, ``CAM_BATCH`` images a pass.

    Args:
        model: a zoo ``keras.Model`` (float32 [B, S, S, 1] 0-255 gray in, logits out).
        images: float32 [B, S, S, 1] model inputs, 0-255.
        class_index: k, the class's position in the model's output, or int [B], each image's class.
        head: the model's head; its ``class_logit`` is the target (logit ``[:, k]``, or the positive
            state's ``[:, k, 1]`` for ``multilabel3``).
        layer: name of the feature map to weigh (default ``feature_layer(model)``).

    Returns:
        float32 [B, S, S] in [0, 1], each map divided by its maximum; all zeros where no feature
        raises the logit.
    """
    import keras

    probe = keras.Model(model.inputs, [feature_layer(model, layer).output, model.outputs[0]])
    images = np.asarray(images, np.float32)
    classes = np.broadcast_to(np.asarray(class_index, np.int32), (len(images),))
    # CAM_BATCH images a pass: a pass holds the activations and gradients of all its images at once.
    return np.concatenate([_grad_cam_pass(probe, images[i:i + CAM_BATCH], classes[i:i + CAM_BATCH], head)
                           for i in range(0, len(images), CAM_BATCH)])


def _grad_cam_pass(probe: Any, images: np.ndarray, classes: np.ndarray, head: Head) -> np.ndarray:
    """``grad_cam`` of images [b, S, S, 1] and their classes int [b] through ``probe`` (features, logits)."""
    import tensorflow as tf

    images = tf.convert_to_tensor(images)
    with tf.GradientTape() as tape:
        fmap, logits = probe(images, training=False)
        target = head.class_logit(logits, classes)
    # Examples are independent in inference mode, so the gradient of the batch sum is per example.
    grads = tf.cast(tape.gradient(target, fmap), tf.float32)
    fmap = tf.cast(fmap, tf.float32)
    if fmap.shape.rank == 3:
        fmap, grads = _token_grid(fmap), _token_grid(grads)
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(weights * fmap, axis=-1, keepdims=True))
    cam = tf.image.resize(cam, images.shape[1:3], method="bilinear")[..., 0]
    peak = tf.reduce_max(cam, axis=(1, 2), keepdims=True)
    return tf.math.divide_no_nan(cam, peak).numpy()


def _token_grid(tokens: Any) -> Any:
    """ViT tokens [B, T, D] -> the patch tokens as a grid [B, g, g, D] (leading class tokens dropped)."""
    import tensorflow as tf

    count = tokens.shape[1]
    if math.isqrt(count) ** 2 == count:
        patches = tokens
    elif math.isqrt(count - 1) ** 2 == count - 1:  # a leading class token
        patches = tokens[:, 1:]
    else:
        raise ValueError(f"{count} tokens are neither a square grid of patches nor one plus a class token")
    side = math.isqrt(patches.shape[1])
    return tf.reshape(patches, [-1, side, side, tokens.shape[2]])


def peak(heatmap: np.ndarray) -> tuple[float, float] | None:
    """``(x, y)`` of a heatmap's maximum in pixel units (pixel centres at +0.5), or None for a zero map.

    Upsampling a coarse map makes plateaus (near the border, a whole cell shares the maximum); the
    peak is the centroid of the tied pixels.
    """
    top = float(heatmap.max())
    if top <= 0.0:
        return None
    rows, cols = np.nonzero(heatmap >= top - 1e-6)
    return float(cols.mean()) + 0.5, float(rows.mean()) + 0.5


def inside(point: tuple[float, float] | None, boxes: np.ndarray) -> bool:
    """Whether ``point`` lies in any of ``boxes`` [N, 4] (xmin, ymin, xmax, ymax; edges included)."""
    if point is None:
        return False
    x, y = point
    return bool(np.any((boxes[:, 0] <= x) & (x <= boxes[:, 2]) & (boxes[:, 1] <= y) & (y <= boxes[:, 3])))


def box_fraction(boxes: np.ndarray, size: int) -> float:
    """Fraction of a ``size`` x ``size`` image whose pixel centres lie in the union of ``boxes``."""
    centres = np.arange(size) + 0.5
    covered = np.zeros((size, size), bool)
    for xmin, ymin, xmax, ymax in boxes:
        rows = (ymin <= centres) & (centres <= ymax)
        cols = (xmin <= centres) & (centres <= xmax)
        covered |= rows[:, None] & cols[None, :]
    return float(covered.mean())


def scale_boxes(boxes: np.ndarray, transform: Transform) -> np.ndarray:
    """Boxes [N, 4] (xmin, ymin, xmax, ymax) mapped by ``transform``."""
    scale = np.array([transform.sx, transform.sy, transform.sx, transform.sy])
    shift = np.array([transform.dx, transform.dy, transform.dx, transform.dy])
    return np.asarray(boxes, np.float64).reshape(-1, 4) * scale + shift


def overlay(gray: np.ndarray, heatmap: np.ndarray, transform: Transform,
            boxes: np.ndarray | None = None) -> np.ndarray:
    """A heatmap in the jet colormap blended over the image it explains, boxes outlined in green.

    Args:
        gray: uint8 [H, W], the image in its own pixels (the file, or the stored record).
        heatmap: float32 [S, S] in [0, 1] over the model input.
        transform: image pixels -> model-input pixels (``cxr_tf.io.imaging.resize``'s ``Transform``).
        boxes: float [N, 4] xmin, ymin, xmax, ymax in image pixels, or None.

    Returns:
        uint8 [H', W', 3] BGR (cv2 order), the image enlarged by a whole factor to a shorter side of at
        least ``DISPLAY_MIN_SIDE``.
    """
    zoom = max(1, math.ceil(DISPLAY_MIN_SIDE / min(gray.shape)))
    height, width = gray.shape[0] * zoom, gray.shape[1] * zoom
    sx, sy = transform.sx / zoom, transform.sy / zoom
    # Output pixel centre (x + 0.5) maps to model coordinate (x + 0.5) * sx + dx, i.e. model pixel index
    # x * sx + (0.5 * sx + dx - 0.5) in cv2's integer-centred convention.
    to_model = np.float32([[sx, 0, 0.5 * sx + transform.dx - 0.5], [0, sy, 0.5 * sy + transform.dy - 0.5]])
    heat = cv2.warpAffine(np.asarray(heatmap, np.float32), to_model, (width, height),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT)
    colour = cv2.applyColorMap(np.round(np.clip(heat, 0, 1) * 255).astype(np.uint8), cv2.COLORMAP_JET)
    base = cv2.cvtColor(cv2.resize(gray, (width, height), interpolation=cv2.INTER_NEAREST), cv2.COLOR_GRAY2BGR)
    out = cv2.addWeighted(colour, OVERLAY_ALPHA, base, 1.0 - OVERLAY_ALPHA, 0.0)
    for xmin, ymin, xmax, ymax in (np.zeros((0, 4)) if boxes is None else boxes * zoom):
        cv2.rectangle(out, (round(xmin), round(ymin)), (round(xmax) - 1, round(ymax) - 1), (0, 255, 0),
                      thickness=max(1, min(height, width) // 256))
    return out


def save_png(path: Path, image: np.ndarray) -> None:
    """Write a uint8 [H, W, 3] BGR image as PNG."""
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise ValueError(f"PNG encoding of {path} failed")
    path.write_bytes(buf.tobytes())


def write_tensorboard(run_dir: Path, overlays: dict[str, np.ndarray]) -> None:
    """Overlays (name -> uint8 [H, W, 3] BGR) as images ``gradcam/<name>`` in the run's ``tb/explain``."""
    from cxr_tf.training import tensorboard

    if overlays:
        tensorboard.write_images(tensorboard.log_dir(run_dir, "explain"),
                                 {f"gradcam/{name}": image for name, image in overlays.items()})


def file_stem(name: str) -> str:
    """A name made safe for a file name (``Pleural Effusion`` -> ``Pleural_Effusion``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "image"


@dataclass(frozen=True)
class Explained:
    """One (image, class) heatmap, with what an overlay of it needs."""

    path: str
    class_name: str
    gray: np.ndarray  # uint8 [H, W], the image in its own pixels
    heatmap: np.ndarray  # float32 [S, S] in [0, 1], model-input pixels
    transform: Transform  # image pixels -> model-input pixels
    boxes: np.ndarray | None = None  # float [N, 4] of class_name in image pixels
    hit: bool | None = None

    def render(self) -> np.ndarray:
        return overlay(self.gray, self.heatmap, self.transform, self.boxes)


@dataclass
class HitRate:
    """Pointing-game counts per class: ``pairs`` boxed (image, class) pairs, ``hits`` of them hit.

    ``chance`` sums each pair's box-area fraction: the hits a peak drawn uniformly at random expects.
    """

    classes: Sequence[str]
    hits: dict[str, int] = field(default_factory=dict)
    pairs: dict[str, int] = field(default_factory=dict)
    chance: dict[str, float] = field(default_factory=dict)

    def add(self, class_name: str, hit: bool, fraction: float) -> None:
        self.hits[class_name] = self.hits.get(class_name, 0) + int(hit)
        self.pairs[class_name] = self.pairs.get(class_name, 0) + 1
        self.chance[class_name] = self.chance.get(class_name, 0.0) + fraction

    def to_json(self) -> dict[str, dict[str, float | int | None]]:
        """``{class: {"hits", "boxes" (pairs), "rate", "chance"}, ..., "overall": {...}}``; rates None
        for a class without boxes."""
        def entry(hits: int, pairs: int, chance: float) -> dict[str, float | int | None]:
            return {"hits": hits, "boxes": pairs, "rate": hits / pairs if pairs else None,
                    "chance": chance / pairs if pairs else None}

        out = {c: entry(self.hits.get(c, 0), self.pairs.get(c, 0), self.chance.get(c, 0.0)) for c in self.classes}
        out["overall"] = entry(sum(self.hits.values()), sum(self.pairs.values()), sum(self.chance.values()))
        return out


def boxed_examples(records: str, split: str, classes: Sequence[str], *, image_size: int,
                   limit: int | None = None) -> Iterator[dict[str, Any]]:
    """The records of ``split`` that hold a box of one of ``classes``, in file order, as the model sees them.

    Yields:
        ``{"path": str, "gray": uint8 [H, W] stored image, "image": float32 [S, S, 1] 0-255 model input,
        "boxes": {class: float32 [N, 4] stored pixels}}``; at most ``limit`` examples.
    """
    import tensorflow as tf

    from cxr_tf.pipeline import parse
    from cxr_tf.pipeline.model_input import to_model_side
    from cxr_tf.records import info as records_info

    info = records_info.RecordsInfo.load(records)
    paths = records_info.shard_paths(records, info, split)
    spec = keys.feature_spec(len(info.classes))
    wanted = tf.constant([name in classes for name in info.classes])

    def parse_one(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
        example = tf.io.parse_single_example(serialized, spec)
        coords = tf.stack([tf.sparse.to_dense(example[key]) for key in keys.BOX_COORD_KEYS], axis=-1)
        return {"path": example[keys.PATH_KEY], "encoded": example[keys.IMAGE_KEY],
                "labels": tf.sparse.to_dense(example[keys.BOX_LABEL_KEY]), "coords": coords}

    def preprocess(element: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        gray = parse.decode_image(element.pop("encoded"))
        image = to_model_side(tf.cast(gray, tf.float32), image_size)
        return {**element, "gray": gray[..., 0], "image": image}

    ds = tf.data.TFRecordDataset(paths).map(parse_one)
    ds = ds.filter(lambda element: tf.reduce_any(tf.gather(wanted, element["labels"])))
    if limit is not None:
        ds = ds.take(limit)
    for element in ds.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE).as_numpy_iterator():
        names = [info.classes[label] for label in element["labels"]]
        yield {"path": element["path"].decode(), "gray": element["gray"], "image": element["image"],
               "boxes": {c: element["coords"][[n == c for n in names]] for c in classes if c in names}}


def hit_rate(model: Any, run: Run, records: str, split: str = "test", *, limit: int | None = None,
             keep: int = 0, layer: str | None = None) -> tuple[HitRate, list[Explained]]:
    """Pointing game of Grad-CAM on the boxed records of ``split``.

    A boxed (image, class) pair is one record and one of the run's classes with at least one box in
    it; it is a hit when the peak of that class's heatmap (``peak``) lies inside one of the class's
    boxes in that image (a heatmap that is zero everywhere has no peak: a miss). The hit rate of a
    class is hits / pairs. This is the pointing game of Zhang et al. 2016 ("Top-down Neural Attention
    by Excitation Backprop", https://arxiv.org/abs/1608.00507) without its 15-px tolerance, and the
    localisation check of the NIH ChestX-ray14 paper's boxes (Wang et al. 2017). Every boxed pair
    counts, whether or not the model predicts the class.

    Boxes are stored-image pixels; the model sees the stored image resized to ``run.config.image_size``
    (``model_input.to_model_side``, squashed), so they are scaled by image_size / stored side.

    Args:
        model: the run's ``keras.Model``. run: its ``cxr_tf.training.runs.Run``.
        records: records directory with boxes (NIH, phantoms). split: split name.
        limit: use only the first ``limit`` boxed records. keep: return the first ``keep`` pairs' heatmaps.
        layer: the feature map (``grad_cam``).

    Returns:
        (the counts, up to ``keep`` ``Explained`` pairs with their boxes in stored pixels).
    """
    size = run.config.image_size
    result, kept = HitRate(run.classes), []
    examples = boxed_examples(records, split, run.classes, image_size=size, limit=limit)
    batch: list[dict[str, Any]] = []
    for example in reporting.progress(examples, desc=f"Grad-CAM {split}", unit="image"):
        batch.append(example)
        if len(batch) == BATCH_SIZE:
            kept += _score(model, run, batch, result, keep - len(kept), layer)
            batch = []
    if batch:
        kept += _score(model, run, batch, result, keep - len(kept), layer)
    return result, kept


def _score(model: Any, run: Run, batch: list[dict[str, Any]], result: HitRate, keep: int,
           layer: str | None) -> list[Explained]:
    size = run.config.image_size
    kept = []
    # Every (image, boxed class) pair of the batch in one Grad-CAM pass, each pair's map of its own class.
    pairs = [(example, k) for k, name in enumerate(run.classes) for example in batch if name in example["boxes"]]
    if not pairs:
        return kept
    heatmaps = grad_cam(model, np.stack([example["image"] for example, _ in pairs]), [k for _, k in pairs],
                        run.head, layer)
    for (example, k), heatmap in zip(pairs, heatmaps):
        name = run.classes[k]
        height, width = example["gray"].shape
        to_model = Transform(size / width, size / height, 0.0, 0.0)
        boxes = scale_boxes(example["boxes"][name], to_model)
        hit = inside(peak(heatmap), boxes)
        result.add(name, hit, box_fraction(boxes, size))
        if len(kept) < keep:
            kept.append(Explained(example["path"], name, example["gray"], heatmap, to_model,
                                  example["boxes"][name], hit))
    return kept
