"""The image's build context: what compose/Dockerfile copies is there, and local state is not."""

from __future__ import annotations

import tomllib

import pytest

from tests.unit.compose.build_context import (
    REPOSITORY,
    build_stage_copies,
    context_files,
    ignore_rules,
    is_ignored,
    matched_by,
)


@pytest.fixture(scope="module")
def context() -> list[str]:
    return context_files()


def test_every_source_the_build_stage_copies_is_in_the_context(context: list[str]) -> None:
    sources = [source for copy in build_stage_copies() for source in copy.sources]
    assert "pyproject.toml" in sources
    # A source the dockerignore leaves out fails `docker build` ("not found").
    assert [source for source in sources if not matched_by(source, context)] == []


def test_every_package_the_wheel_is_built_from_is_copied(context: list[str]) -> None:
    pyproject = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())
    included = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {pattern.removesuffix("*") for pattern in included}
    copied = {source.rstrip("/") for copy in build_stage_copies() for source in copy.sources}
    assert packages <= copied
    assert packages <= {path.split("/")[0] for path in context}


def test_local_state_and_tests_stay_out_of_the_context(context: list[str]) -> None:
    tops = {path.split("/")[0] for path in context}
    assert tops.isdisjoint({".venv", "data", "tests", "docs", "bench", ".git", "compose"})
    assert not [path for path in context if "__pycache__" in path or path.endswith(".pyc")]


@pytest.mark.parametrize(
    ("path", "ignored"),
    [
        ("api/main.py", False),
        ("api/console_assets/index.html", False),
        ("api/__pycache__/main.cpython-311.pyc", True),
        ("__pycache__/x.pyc", True),
        ("apix/main.py", True),
        ("notes.md", True),
        ("README.md", False),
        ("READMEs/x", False),  # README* matches the folder, so everything under it
        ("api.py", True),
    ],
)
def test_the_last_matching_rule_decides_and_a_folder_s_rule_covers_its_files(
    path: str, ignored: bool
) -> None:
    rules = ignore_rules("**\n!README*\n!api/\n**/__pycache__\n**/*.pyc\n")
    assert is_ignored(path, rules) is ignored


def test_a_single_star_stays_within_one_segment() -> None:
    rules = ignore_rules("**\n!a/*.py\n")
    assert not is_ignored("a/x.py", rules)
    assert is_ignored("a/b/x.py", rules)


def test_a_pattern_form_the_reader_does_not_know_is_refused() -> None:
    with pytest.raises(ValueError, match="does not support"):
        ignore_rules("[abc]\n")
