"""Load pipeline specs (built-ins and a directory of YAML/JSON files), compile them, look them up.

Everything is validated and compiled at start-up: a bad spec file stops the process with a
message naming the file, the problem and the fix, instead of failing requests later.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from schemas import jsonio
from schemas.pipeline import REF_PATTERN, PipelineSpec
from transforms.errors import SpecError, UnknownPipelineError
from transforms.outcome import CacheStats
from transforms.pipeline import CompiledPipeline

SPEC_SUFFIXES = (".yaml", ".yml", ".json")


def _location(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def _describe(error: Any) -> str:
    where = _location(error["loc"])
    prefix = f"{where}: " if where else ""
    if error["type"] == "union_tag_invalid":
        ctx = error["ctx"]
        return f"{prefix}unknown step {ctx['tag']!r}; known: {ctx['expected_tags']}"
    if error["type"] == "extra_forbidden":
        return f"{prefix}unknown key; remove it or check its spelling (see docs/pipelines.md)"
    message = str(error["msg"]).removeprefix("Value error, ")
    if where == "version":
        message += " (write a positive integer, e.g. `version: 2`)"
    return f"{prefix}{message}"


def _read(origin: str, text: str, is_json: bool) -> Any:
    try:
        return jsonio.loads(text) if is_json else yaml.safe_load(text)
    except (jsonio.JSONDecodeError, yaml.YAMLError) as exc:
        kind = "JSON" if is_json else "YAML"
        raise SpecError(f"{origin}: not valid {kind} ({exc}); fix the syntax") from None


def parse_spec(origin: str, text: str, *, is_json: bool = False) -> PipelineSpec:
    """Validate the text of one spec file; ``origin`` names the file in error messages."""
    data = _read(origin, text, is_json)
    if not isinstance(data, dict):
        raise SpecError(f"{origin}: a spec must be a mapping with name, version and fields")
    try:
        return PipelineSpec.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_describe(error) for error in exc.errors())
        raise SpecError(f"{origin}: invalid pipeline spec: {problems}") from None


def _builtin_sources() -> Iterable[tuple[str, str, bool]]:
    folder = resources.files("transforms") / "builtin"
    for entry in sorted(folder.iterdir(), key=lambda item: item.name):
        if entry.name.endswith(SPEC_SUFFIXES):
            yield f"built-in {entry.name}", entry.read_text("utf-8"), entry.name.endswith(".json")


def _directory_sources(directory: Path) -> Iterable[tuple[str, str, bool]]:
    if not directory.is_dir():
        raise SpecError(
            f"{directory}: the pipelines directory does not exist; "
            "create it or unset BATCHLINE_PIPELINES_DIR"
        )
    for path in sorted(directory.iterdir()):
        if path.suffix in SPEC_SUFFIXES and not path.name.startswith("."):
            try:
                text = path.read_text("utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise SpecError(f"{path}: cannot be read ({exc})") from None
            yield str(path), text, path.suffix == ".json"


class PipelineRegistry:
    """Every loaded pipeline by ``name@version``; ``name`` alone means its newest version."""

    def __init__(self, pipelines: Iterable[CompiledPipeline]) -> None:
        self._by_ref = {pipeline.ref: pipeline for pipeline in pipelines}
        self._newest: dict[str, CompiledPipeline] = {}
        for pipeline in self._by_ref.values():
            current = self._newest.get(pipeline.name)
            if current is None or pipeline.version > current.version:
                self._newest[pipeline.name] = pipeline

    @classmethod
    def load(
        cls, directory: Path | None, *, hash_secret: bytes, cache_size: int = 65536
    ) -> PipelineRegistry:
        """Load the built-ins and every spec file in ``directory``; SpecError on any problem."""
        sources = list(_builtin_sources())
        if directory is not None:
            sources.extend(_directory_sources(Path(directory)))
        pipelines: dict[str, tuple[str, CompiledPipeline]] = {}
        for origin, text, is_json in sources:
            spec = parse_spec(origin, text, is_json=is_json)
            if spec.ref in pipelines:
                raise SpecError(
                    f"{origin}: {spec.ref} is already defined by {pipelines[spec.ref][0]}; "
                    "give one of them a new version"
                )
            try:
                compiled = CompiledPipeline(spec, hash_secret=hash_secret, cache_size=cache_size)
            except SpecError as exc:
                raise SpecError(f"{origin}: {exc}") from None
            pipelines[spec.ref] = (origin, compiled)
        return cls(compiled for _, compiled in pipelines.values())

    def get(self, ref: str) -> CompiledPipeline:
        """The pipeline at ``name@version``, or the newest version of ``name``."""
        match = REF_PATTERN.fullmatch(ref)
        found = None
        if match is not None:
            version = match["version"]
            found = (
                self._by_ref.get(ref) if version is not None else self._newest.get(match["name"])
            )
        if found is None:
            # A malformed reference is not echoed: it is caller input and may be anything.
            named = f"unknown pipeline {ref[:100]!r}" if match else "malformed pipeline reference"
            raise UnknownPipelineError(
                f"{named}; known: {', '.join(self.refs())} (write name or name@version)"
            )
        return found

    def refs(self) -> list[str]:
        """Every loaded ``name@version``, sorted by name then version."""
        return [p.ref for p in sorted(self._by_ref.values(), key=lambda p: (p.name, p.version))]

    def cache_stats(self) -> CacheStats:
        """Cumulative hits and misses of every pipeline's result caches."""
        stats = [pipeline.cache_stats() for pipeline in self._by_ref.values()]
        return CacheStats(sum(s.hits for s in stats), sum(s.misses for s in stats))
