"""Dataset adapters, one per source, registered by their ``--dataset`` name.

An adapter is ``load(cfg: SourceConfig) -> Manifest``: it reads the source's own files and returns
the one schema of ``cxr_tf.datasets.manifest``. ``load_manifest`` adds the split the flags ask for.

Examples:
    >>> from cxr_tf.datasets import DATASETS
    >>> DATASETS.names()
    ['chexpert', 'covid_radiography', 'csv', 'kermany', 'nih']
"""

from __future__ import annotations

from collections.abc import Callable

from cxr_tf.registry import Registry

DATASETS: Registry[Callable] = Registry("dataset")

# Imported for their registration side effect; DATASETS must exist first.
from cxr_tf.datasets import chexpert, covid_radiography, csv_table, kermany, nih  # noqa: F401
from cxr_tf.datasets.manifest import Manifest
from cxr_tf.datasets.source import SourceConfig


def load_manifest(cfg: SourceConfig) -> Manifest:
    """The manifest of ``cfg.dataset``, with a ``split`` column when ``cfg.split`` is set."""
    from cxr_tf.datasets import splits

    manifest = DATASETS.get(cfg.dataset)(cfg)
    if cfg.split is None:
        return manifest
    return splits.assign_splits(manifest, cfg.split, val=cfg.val, test=cfg.test, seed=cfg.seed,
                                classes=cfg.split_classes or None, uncertainty=cfg.split_uncertainty,
                                propagate_parents=cfg.split_propagate_parents)
