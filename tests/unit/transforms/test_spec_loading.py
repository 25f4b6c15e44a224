"""Loading spec files: good ones resolve by ref, bad ones fail naming the file and the problem."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from transforms import PipelineRegistry, SpecError, UnknownPipelineError
from transforms.registry import RELOAD_ON_MISS_INTERVAL_S

from .conftest import HASH_SECRET

GOOD_YAML = """
name: orders
version: {version}
on_invalid: skip
fields:
  - source: created
    target: created_at
    parse: {{op: timestamp, timezone: Europe/Paris}}
  - source: total
    parse: decimal
    transform: {{op: round, places: 2}}
passthrough: [order_id]
filters:
  - {{op: duplicate, key: [order_id]}}
"""


ORDERS_V1 = GOOD_YAML.format(version=1)


def _load(directory: Path) -> PipelineRegistry:
    return PipelineRegistry.load(directory, hash_secret=HASH_SECRET)


def test_directory_specs_resolve_by_name_and_version(tmp_path: Path) -> None:
    (tmp_path / "orders-1.yaml").write_text(GOOD_YAML.format(version=1))
    (tmp_path / "orders-2.yml").write_text(GOOD_YAML.format(version=2))
    (tmp_path / "copy.json").write_text(
        '{"name": "copy", "version": 3, "fields": [{"source": "a", "default": 1.50}]}'
    )
    (tmp_path / "notes.txt").write_text("not a spec")
    registry = _load(tmp_path)
    assert registry.refs() == ["copy@3", "default@1", "orders@1", "orders@2"]
    assert registry.get("orders").ref == "orders@2"
    assert registry.get("orders@1").on_invalid == "skip"
    assert registry.get("copy").run([{}]).results == [{"a": Decimal("1.50")}]


def test_unknown_ref_lists_the_known_ones() -> None:
    registry = PipelineRegistry.load(None, hash_secret=HASH_SECRET)
    for ref in ("nope", "default@2", "default@0", "bad ref!"):
        with pytest.raises(UnknownPipelineError, match="known: default@1"):
            registry.get(ref)


def test_an_edited_spec_gets_a_new_digest(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD_YAML.format(version=1))
    before = _load(tmp_path).get("orders@1").digest
    assert _load(tmp_path).get("orders@1").digest == before
    (tmp_path / "a.yaml").write_text(GOOD_YAML.format(version=1).replace("places: 2", "places: 3"))
    assert _load(tmp_path).get("orders@1").digest != before


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (GOOD_YAML.format(version=1).replace("op: round", "op: rounds"), "unknown step 'rounds'"),
        (
            GOOD_YAML.format(version=1).replace("parse: decimal", "parse: money"),
            "unknown step 'money'",
        ),
        (
            GOOD_YAML.format(version=1).replace("key: [order_id]", "key: [order]"),
            "unknown field 'order'",
        ),
        (GOOD_YAML.format(version="one"), "version"),
        (GOOD_YAML.format(version=0), "version"),
        (GOOD_YAML.format(version=1.5), "version"),
        (GOOD_YAML.format(version=1).replace("total\n", "total\n    tagret: x\n"), "unknown key"),
        (
            GOOD_YAML.format(version=1).replace("Europe/Paris", "Mars/Olympus"),
            "unknown IANA time zone",
        ),
        (
            GOOD_YAML.format(version=1).replace("parse: decimal", "parse: timestamp"),
            "step 'round' cannot take a timestamp value",
        ),
        (
            "name: x\nversion: 1\nfields:\n  - {source: a, parse: decimal, default: lots}\n",
            "the default fails",
        ),
        (
            "name: x\nversion: 1\nfields:\n  - {source: a, required: true, default: 1}\n",
            "required and has a default",
        ),
        (
            "name: x\nversion: 1\nfields:\n  - {source: a}\n  - {source: b, target: a}\n",
            "defined twice",
        ),
        (
            "name: x\nversion: 1\nfields:\n  - {source: a, transform: [redact, trim]}\n",
            "redact must be the last step",
        ),
        ("- just\n- a list\n", "must be a mapping"),
        ("name: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_spec_fails_at_load_naming_file_and_problem(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as caught:
        _load(tmp_path)
    assert str(path) in str(caught.value)
    assert problem in str(caught.value)


def test_two_files_with_the_same_ref_conflict(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD_YAML.format(version=1))
    (tmp_path / "b.yaml").write_text(GOOD_YAML.format(version=1))
    with pytest.raises(SpecError, match=r"b\.yaml: orders@1 is already defined by .*a\.yaml"):
        _load(tmp_path)


def test_builtin_default_cannot_be_redefined(tmp_path: Path) -> None:
    (tmp_path / "d.json").write_text(
        '{"name": "default", "version": 1, "fields": [{"source": "a"}]}'
    )
    with pytest.raises(SpecError, match="default@1 is already defined by built-in default.yaml"):
        _load(tmp_path)


def test_missing_directory_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="BATCHLINE_PIPELINES_DIR"):
        _load(tmp_path / "absent")


def test_bad_json_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text('{"name": "x", "version": 1,')
    with pytest.raises(SpecError, match=r"x\.json: not valid JSON"):
        _load(tmp_path)


def test_reload_adds_new_versions_and_keeps_what_was_loaded(tmp_path: Path) -> None:
    (tmp_path / "orders.yaml").write_text(ORDERS_V1)
    registry = _load(tmp_path)
    loaded = registry.get("orders@1")
    (tmp_path / "orders-2.yaml").write_text(ORDERS_V1.replace("version: 1", "version: 2"))
    (tmp_path / "orders.yaml").unlink()  # batches naming orders@1 may still be running

    assert registry.reload() == ["orders@2"]
    assert registry.get("orders").ref == "orders@2"
    assert registry.get("orders@1") is loaded
    assert registry.reload() == []


def test_reload_refuses_a_changed_version_and_a_bad_file_and_keeps_the_loaded(
    tmp_path: Path,
) -> None:
    (tmp_path / "orders.yaml").write_text(ORDERS_V1)
    registry = _load(tmp_path)
    before = registry.get("orders@1")
    (tmp_path / "orders.yaml").write_text(
        ORDERS_V1.replace("on_invalid: skip", "on_invalid: reject")
    )
    with pytest.raises(SpecError, match="orders@1 changed since it was loaded"):
        registry.reload()
    (tmp_path / "orders.yaml").write_text(ORDERS_V1)
    (tmp_path / "broken.yaml").write_text("name: [")
    with pytest.raises(SpecError, match="broken.yaml: not valid YAML"):
        registry.reload()
    assert registry.refs() == ["default@1", "orders@1"]
    assert registry.get("orders@1") is before


def test_a_miss_reads_the_folder_again_at_most_every_few_seconds(tmp_path: Path) -> None:
    registry = _load(tmp_path)
    with pytest.raises(UnknownPipelineError):
        registry.get_or_reload("orders@1")  # reloaded: nothing there yet
    (tmp_path / "orders.yaml").write_text(ORDERS_V1)
    with pytest.raises(UnknownPipelineError):
        registry.get_or_reload("orders@1")  # too soon after the last miss to read again
    registry._reloaded_on_miss_at -= RELOAD_ON_MISS_INTERVAL_S
    assert registry.get_or_reload("orders@1").ref == "orders@1"
