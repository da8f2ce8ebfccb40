"""The records build as an Apache Beam pipeline, for datasets that outgrow one machine.

Same plan, same per-image function and same shard writer as the local build (``build.plan_build``,
``encode.make_record``, ``output.write_shard``), so the output is identical to a local build of the
same arguments: the same shard files with the same records in the same order, the same
``dataset.json``. The manifest and split are computed once on the driver; Beam runs decoding and shard
writing. Bad images leave the decoding step as a tagged side output and end up in the same
``skipped.csv``; images ok / skipped by reason are also Beam counters (namespace ``cxr_tf``), whose
totals are checked against the shards' own counts and stored in ``dataset.json`` under
``beam_metrics``.

Importing this module needs ``apache-beam`` (``pip install -e .[beam]``); the CLI imports it only
for ``--runner beam``. Pipeline options are passed through untouched (``--beam-option=--runner=FlinkRunner``...). With
``--strict`` the pipeline still runs to the end (a remote runner cannot stop at the first bad
image), then the build fails before ``dataset.json`` is written.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

from cxr_tf import reporting
from cxr_tf.datasets import manifest as mf
from cxr_tf.errors import DataError
from cxr_tf.records import build, encode, info, output

log = reporting.logger("records.beam")

NAMESPACE = "cxr_tf"
SKIPPED = "skipped"


def build_records_beam(
    manifest: mf.Manifest,
    out: str,
    options: build.RecordOptions,
    *,
    beam_options: Sequence[str] = (),
    strict: bool = False,
    overwrite: bool = False,
    build_args: dict[str, Any] | None = None,
) -> info.RecordsInfo:
    """``build.build_records`` on a Beam runner (DirectRunner unless ``beam_options`` say otherwise).

    Args:
        beam_options: Beam pipeline flags, e.g. ``["--runner=FlinkRunner", "--flink_master=host:8081"]``.
        Other args as ``build.build_records``.

    Returns:
        The written ``dataset.json``.
    """
    plan = build.plan_build(manifest, options, strict=strict)
    with output.claim(out, manifest.image_root):
        return _build(manifest, out, options, plan, beam_options, strict, overwrite, build_args)


def _build(manifest: mf.Manifest, out: str, options: build.RecordOptions, plan: build.BuildPlan,
           beam_options: Sequence[str], strict: bool, overwrite: bool,
           build_args: dict[str, Any] | None) -> info.RecordsInfo:
    done = output.prepare(out, plan.key, overwrite)
    if done is not None:
        log.info("%s already holds this build; nothing to do", out)
        return done
    todo = plan.todo(out)
    rows = [(name, position, task) for name, tasks in todo for position, task in enumerate(tasks)]
    pipeline = beam.Pipeline(options=PipelineOptions(list(beam_options)))
    decoded = (pipeline
               | "Rows" >> beam.Create(rows, reshuffle=True)
               | "Decode" >> beam.ParDo(_Decode(manifest.image_root, options)).with_outputs(SKIPPED, main="ok"))
    # Every planned shard is a key, so a shard whose images were all skipped is still written.
    names = pipeline | "Shards" >> beam.Create([(name, None) for name, _ in todo])
    ({"shard": names, "ok": decoded.ok, SKIPPED: decoded[SKIPPED]}
     | "Group" >> beam.CoGroupByKey()
     | "Write" >> beam.Map(_write, out=out))
    result = pipeline.run()
    result.wait_until_finish()

    entries = plan.entries(out)
    if any(e is None for shards in entries.values() for e in shards):
        raise DataError(f"the Beam pipeline finished without writing every shard of {out}; re-run to resume")
    skips = [s for shards in entries.values() for e in shards for s in e["skipped"]]
    if strict and (skips or len(manifest.skipped)):
        path, reason = skips[0] if skips else tuple(manifest.skipped.iloc[0])
        raise DataError(f"{path}: {reason} (--strict)")
    metrics = _counters(result)
    args = dict(build_args or {}, beam_metrics=metrics)
    return output.finish(out, manifest, dataclasses.asdict(options), plan.key, entries, args)


class _Decode(beam.DoFn):
    """One row -> ``(shard, (position, Record))``, or the side output for a bad image."""

    def __init__(self, root: Path | None, options: build.RecordOptions) -> None:
        self.root, self.options = root, options
        self.ok = beam.metrics.Metrics.counter(NAMESPACE, "images ok")

    def process(self, row: tuple) -> Iterator[Any]:
        name, position, task = row
        result = encode.make_record(task, self.root, self.options)
        if isinstance(result, encode.Skipped):
            beam.metrics.Metrics.counter(NAMESPACE, f"skipped: {mf.reason_category(result.reason)}").inc()
            yield beam.pvalue.TaggedOutput(SKIPPED, (name, (position, result)))
        else:
            self.ok.inc()
            yield name, (position, result)


def _write(group: tuple[str, dict[str, Iterable]], out: str) -> str:
    """Write one shard from its grouped results, in the planned order (as the local build does)."""
    name, parts = group
    ordered = sorted([*parts["ok"], *parts[SKIPPED]], key=lambda item: item[0])
    # Strictness is judged on the driver after the run (see module docstring).
    output.write_shard(out, name, (result for _, result in ordered), strict=False)
    return name


def _counters(result: Any) -> dict[str, int]:
    query = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))
    return {c.key.metric.name: int(c.committed if c.committed is not None else c.attempted)
            for c in query["counters"]}
