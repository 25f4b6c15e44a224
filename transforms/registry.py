"""Load pipeline specs (built-ins and a directory of YAML/JSON files), compile them, look them up.

Everything is validated and compiled at start-up: a bad spec file stops the process with a
message naming the file, the problem and the fix, instead of failing requests later.
"""

from __future__ import annotations

import logging
import time
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
# A reference nobody has loaded makes the registry read its spec files again, at most this often:
# a new version may just have been deployed; a stream of bogus names must not cost a reload each.
RELOAD_ON_MISS_INTERVAL_S = 5.0
log = logging.getLogger(__name__)


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
    return validate_spec(origin, _read(origin, text, is_json))


def validate_spec(origin: str, data: Any) -> PipelineSpec:
    """Validate a parsed spec; SpecError, one line naming ``origin``, on any problem."""
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


def _compile_all(
    directory: Path | None, hash_secret: bytes, cache_size: int
) -> list[CompiledPipeline]:
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
        pipelines[spec.ref] = (origin, compile_spec(origin, spec, hash_secret, cache_size))
    return [compiled for _, compiled in pipelines.values()]


def compile_spec(
    origin: str, spec: PipelineSpec, hash_secret: bytes, cache_size: int = 65536
) -> CompiledPipeline:
    """The compiled pipeline; SpecError naming ``origin`` when a field rule cannot compile."""
    try:
        return CompiledPipeline(spec, hash_secret=hash_secret, cache_size=cache_size)
    except SpecError as exc:
        raise SpecError(f"{origin}: {exc}") from None


def output_fields(spec: PipelineSpec) -> list[str]:
    """The fields of an output record, in order: each rule's target, then the pass-through."""
    return [rule.target for rule in spec.fields] + list(spec.passthrough)


class PipelineRegistry:
    """Every loaded pipeline by ``name@version``; ``name`` alone means its newest version.

    ``reload()`` adds what new spec files define; a bad new file never takes a good pipeline
    away.
    """

    def __init__(
        self,
        pipelines: Iterable[CompiledPipeline],
        *,
        directory: Path | None = None,
        hash_secret: bytes = b"",
        cache_size: int = 65536,
    ) -> None:
        self._directory = directory
        self._hash_secret = hash_secret
        self._cache_size = cache_size
        self._by_ref: dict[str, CompiledPipeline] = {}
        self._newest: dict[str, CompiledPipeline] = {}
        self._replace(pipelines)
        self._reloaded_on_miss_at = -RELOAD_ON_MISS_INTERVAL_S

    def _replace(self, pipelines: Iterable[CompiledPipeline]) -> None:
        by_ref = {pipeline.ref: pipeline for pipeline in pipelines}
        newest: dict[str, CompiledPipeline] = {}
        for pipeline in by_ref.values():
            current = newest.get(pipeline.name)
            if current is None or pipeline.version > current.version:
                newest[pipeline.name] = pipeline
        self._by_ref, self._newest = by_ref, newest

    @classmethod
    def load(
        cls, directory: Path | None, *, hash_secret: bytes, cache_size: int = 65536
    ) -> PipelineRegistry:
        """Load the built-ins and every spec file in ``directory``; SpecError on any problem."""
        return cls(
            _compile_all(directory, hash_secret, cache_size),
            directory=directory,
            hash_secret=hash_secret,
            cache_size=cache_size,
        )

    def reload(self) -> list[str]:
        """Reads the built-ins and the directory again, adds the pipelines that are new and
        returns their refs.

        A loaded pipeline stays loaded as it is, even if its file is gone: batches that name
        it may still be running. A file that changed a loaded ``name@version`` is refused, as
        is any bad file (SpecError, naming it); the loaded pipelines then stay as they were.
        """
        fresh = _compile_all(self._directory, self._hash_secret, self._cache_size)
        for pipeline in fresh:
            loaded = self._by_ref.get(pipeline.ref)
            if loaded is not None and loaded.digest != pipeline.digest:
                raise SpecError(
                    f"{pipeline.ref} changed since it was loaded; give the new spec a new "
                    "version (batches go on with the version they named)"
                )
        added = [pipeline for pipeline in fresh if pipeline.ref not in self._by_ref]
        self._replace([*self._by_ref.values(), *added])
        return sorted(pipeline.ref for pipeline in added)

    def reload_logged(self) -> None:
        """``reload()`` on SIGHUP: says in one log line what was added, or why nothing was."""
        try:
            added = self.reload()
        except SpecError as exc:
            log.error("pipelines not reloaded", extra={"reason": str(exc)})
            return
        log.warning("pipelines reloaded", extra={"added": added, "pipelines": self.refs()})

    def pipelines(self) -> list[CompiledPipeline]:
        """Every loaded pipeline, sorted by name then version."""
        return sorted(self._by_ref.values(), key=lambda p: (p.name, p.version))

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

    def get_or_reload(self, ref: str) -> CompiledPipeline:
        """``get``; on a miss, reads the spec files again (at most every 5 s) and looks again."""
        try:
            return self.get(ref)
        except UnknownPipelineError:
            now = time.monotonic()
            if now - self._reloaded_on_miss_at < RELOAD_ON_MISS_INTERVAL_S:
                raise
            self._reloaded_on_miss_at = now
            self.reload_logged()
        return self.get(ref)

    def refs(self) -> list[str]:
        """Every loaded ``name@version``, sorted by name then version."""
        return [p.ref for p in self.pipelines()]

    def cache_stats(self) -> CacheStats:
        """Cumulative hits and misses of every pipeline's result caches."""
        stats = [pipeline.cache_stats() for pipeline in self._by_ref.values()]
        return CacheStats(sum(s.hits for s in stats), sum(s.misses for s in stats))
