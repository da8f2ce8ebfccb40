"""cxr_tf in TensorFlow Datasets: records directories as TFDS datasets, and TFDS builders of the sources.

Importing this package registers the builders ``cxr_phantoms``, ``cxr_nih``, ``cxr_chexpert``,
``cxr_kermany`` and ``cxr_covid_radiography`` (``builders.py``) with TFDS.

Examples:
    >>> import tensorflow_datasets as tfds
    >>> import cxr_tf.tfds
    >>> ds = tfds.load("cxr_phantoms/tiny", split="train")                    # drawn here, no download
    >>> ds = tfds.load("cxr_kermany/3classes", split="train",
    ...                download_and_prepare_kwargs={"download_config": tfds.download.DownloadConfig(
    ...                    manual_dir="/data/kermany")})                     # the user's download
    >>> builder = cxr_tf.tfds.builder_from_records("records/nih")           # a build_records output
"""

from __future__ import annotations

from typing import Any

from cxr_tf.tfds.builders import (CxrChexpert, CxrConfig, CxrCovidRadiography, CxrKermany, CxrNih,
                                  CxrPhantoms, PhantomConfig)

__all__ = ["CxrChexpert", "CxrConfig", "CxrCovidRadiography", "CxrKermany", "CxrNih", "CxrPhantoms",
           "PhantomConfig", "builder_from_records"]


def builder_from_records(records_dir: str) -> Any:
    """``tfds.builder_from_directory(records_dir)`` for a finished build_records output.

    A build made before build_records wrote TFDS metadata gets it here first (derived from its
    ``dataset.json``); a directory without ``dataset.json`` raises ``UserError`` in one line.
    """
    import tensorflow as tf
    import tensorflow_datasets as tfds

    from cxr_tf.records import info, tfds_metadata

    content = info.RecordsInfo.load(records_dir)
    if not all(tf.io.gfile.exists(info.join(records_dir, name)) for name in tfds_metadata.TFDS_FILES):
        tfds_metadata.write(records_dir, content)
    return tfds.builder_from_directory(records_dir)
