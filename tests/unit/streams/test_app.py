"""The Faust app's table keeps its memory bounded."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry

from schemas.settings import Settings
from streams.app import ROCKSDB_OPTIONS, build_app

MIB = 1024 * 1024


def test_the_progress_table_gets_small_rocksdb_write_buffers(tmp_path: Path) -> None:
    streams_app = build_app(Settings(data_dir=tmp_path), CollectorRegistry())
    options = streams_app.progress_table.options
    assert options is ROCKSDB_OPTIONS
    # Faust's default is 64 MiB a buffer, three a partition: memory grew with every write.
    assert options["write_buffer_size"] * options["max_write_buffer_number"] <= 2 * MIB
