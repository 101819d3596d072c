"""The `dataset` stage as an Apache Beam pipeline (the `scale` extra: `pip install -e '.[scale]'`).

The same steps as `bridge.data.pipeline.build`, spread over Beam workers: the file list (and
each file's split) is made where the command runs; each worker converts files with the same
converter (`pipeline.convert_file`); the examples are grouped by split and part (one part per
split, or one per `shard_files` files) and each part is written by one worker; a last step
writes the manifest from every file's summary. Parts hold their files' examples in file order,
so the cache is the one the local path writes: same examples, same split, same statistics.

Beam's own options pass through (`--runner`, `--direct_num_workers`, `--flink_master`,
`--project`...; https://beam.apache.org/documentation/runners/direct/ and the other runners'
pages), so one command runs on the DirectRunner, Flink, Spark or Dataflow. Workers open the
MIDI files and write the cache by path: the data folders and the cache root must be on a
filesystem every worker mounts (NFS, or a bucket mounted with gcsfuse), as a trainer reads the
cache by path too. Examples travel between Beam stages in Beam's own coders; nothing stored is
pickled.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from bridge.data import cache_layout, converters, pipeline
from bridge.models.configs import ModelConfig


class _Convert(beam.DoFn):
    """One converter per worker (made in `setup`), one FileResult per file."""

    def __init__(self, name: str, args: dict) -> None:
        self.name, self.args = name, args

    def setup(self) -> None:
        self.converter = converters.get(self.name, **self.args)

    def process(self, item: tuple[int, str, str, str | None]) -> Iterable[pipeline.FileResult]:
        index, path, label, split = item
        yield pipeline.convert_file(self.converter, index, Path(path), label, split)


def _keyed(result: pipeline.FileResult, shard_files: int):
    if result.examples:
        yield (result.split, pipeline.part_of(result, shard_files)), (result.index, result.examples)


def _write_part(item, cache: str, shard_files: int) -> tuple[str, int, dict, dict]:
    """Write one part, its files' examples in file order; return (split, part, entry, specs)."""
    (split, part), files = item
    examples = [e for _, found in sorted(files, key=lambda f: f[0]) for e in found]
    entry = cache_layout.write_arrays(Path(cache) / pipeline.part_name(split, part, shard_files), examples)
    return split, part, entry, cache_layout.array_specs(examples[0])


def _write_manifest(_, config: ModelConfig, sources: list[Path], found: int, cache: str, shard_files: int,
                    summaries: list, written: list) -> None:
    written = sorted(written, key=lambda w: (pipeline.SPLITS.index(w[0]), w[1]))
    shards = {s: [entry for split, _, entry, _ in written if split == s] for s in pipeline.SPLITS}
    specs = written[-1][3] if written else {}
    manifest = pipeline.manifest_of(config, sources, found, sorted(summaries, key=lambda r: r.index), specs,
                                    shards, shard_files)
    pipeline.write_manifest(Path(cache), manifest)


def build(config: ModelConfig, source, cache_root: str | Path = "cache", beam_args: Sequence[str] = (),
          shard_files: int = 0) -> Path:
    """Build (or reuse) the cache of `pipeline.build` with Beam; `beam_args` are Beam's
    pipeline options (e.g. ["--runner=FlinkRunner", "--flink_master=host:8081"])."""
    sources = pipeline.sources_of(source)
    cache = pipeline.cache_folder(config, sources, cache_root)
    if (cache / "manifest.json").is_file():
        return cache
    files = pipeline.listed_files(sources)
    cache.mkdir(parents=True, exist_ok=True)
    listed = [(i, str(path), label, split) for i, (path, label, split) in enumerate(files)]
    with beam.Pipeline(options=PipelineOptions(list(beam_args))) as p:
        results = (p | "list files" >> beam.Create(listed)
                   | "spread files" >> beam.Reshuffle()
                   | "convert" >> beam.ParDo(_Convert(config.converter, config.converter_args)))
        summaries = (results | "summarize" >> beam.Map(lambda r: r.summary())
                     | "all summaries" >> beam.combiners.ToList())
        written = (results | "key by part" >> beam.FlatMap(_keyed, shard_files)
                   | "group parts" >> beam.GroupByKey()
                   | "write parts" >> beam.Map(_write_part, str(cache), shard_files))
        _ = (p | "once" >> beam.Create([None])
             | "write manifest" >> beam.Map(_write_manifest, config, sources, len(files), str(cache), shard_files,
                                            summaries=beam.pvalue.AsSingleton(summaries),
                                            written=beam.pvalue.AsList(written)))
    return cache
