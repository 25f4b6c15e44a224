"""What `docker build -f compose/Dockerfile .` sends to the builder and copies into the image,
worked out without a Docker engine (none runs here).

The context is the repository root filtered by compose/Dockerfile.dockerignore, with the rules
of Docker's pattern matcher (github.com/moby/patternmatcher): patterns are read in order and the
last one that matches a path decides (``!`` puts a path back); a pattern that matches a folder
matches everything under it; ``*`` and ``?`` stay within one path segment and ``**`` crosses
any number of them. Only the forms the file uses are supported, and any other is refused.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tests.unit.compose.artifacts import COMPOSE_DIR, DOCKERFILE

REPOSITORY = COMPOSE_DIR.parent
DOCKERIGNORE = COMPOSE_DIR / "Dockerfile.dockerignore"
_SUPPORTED = re.compile(r"[A-Za-z0-9_.*/?-]+")


@dataclass(frozen=True, slots=True)
class IgnoreRule:
    pattern: re.Pattern[str]
    puts_back: bool


def _segment_regex(pattern: str) -> str:
    if not _SUPPORTED.fullmatch(pattern):
        raise ValueError(f"dockerignore pattern this reader does not support: {pattern!r}")
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)


def ignore_rules(text: str) -> list[IgnoreRule]:
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        puts_back = line.startswith("!")
        cleaned = str(PurePosixPath(line.removeprefix("!").lstrip("/")))
        rules.append(IgnoreRule(re.compile(f"^{_segment_regex(cleaned)}$"), puts_back))
    return rules


def is_ignored(path: str, rules: list[IgnoreRule]) -> bool:
    """Whether the file ``path`` (relative, with /) stays out of the context."""
    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]  # its folders, then it
    ignored = False
    for rule in rules:
        if any(rule.pattern.match(candidate) for candidate in candidates):
            ignored = not rule.puts_back
    return ignored


def context_files(root: Path = REPOSITORY, ignore_file: Path = DOCKERIGNORE) -> list[str]:
    """Every file of the build context, relative to ``root``."""
    rules = ignore_rules(ignore_file.read_text())
    found = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if relative.startswith(".git/") or not path.is_file():
            continue
        if not is_ignored(relative, rules):
            found.append(relative)
    return found


@dataclass(frozen=True, slots=True)
class Copy:
    sources: tuple[str, ...]
    destination: str


def build_stage_copies(dockerfile: Path = DOCKERFILE) -> list[Copy]:
    """The COPY instructions of the first stage (the one that takes files from the context;
    later stages copy only ``--from`` it)."""
    copies: list[Copy] = []
    stages = 0
    for line in dockerfile.read_text().splitlines():
        words = line.split()  # FROM and COPY lines here hold no quotes or continuations
        if not words or words[0].startswith("#"):
            continue
        if words[0].upper() == "FROM":
            stages += 1
        elif words[0].upper() == "COPY" and stages == 1:
            if any(word.startswith("--") for word in words[1:]):
                raise ValueError(f"COPY option this reader does not support: {line!r}")
            *sources, destination = words[1:]
            copies.append(Copy(tuple(sources), destination))
    return copies


def matched_by(source: str, files: list[str]) -> list[str]:
    """The context files a COPY source names: a file, a folder's files, or a glob's files."""
    folder = source.rstrip("/")
    glob = re.compile(f"^{_segment_regex(folder)}$")
    return [f for f in files if glob.match(f) or f.startswith(f"{folder}/")]


def assemble_source_tree(target: Path) -> None:
    """Lays out in ``target`` what the build stage copies into its working folder (``/src``)."""
    files = context_files()
    for copy in build_stage_copies():
        for source in copy.sources:
            if copy.destination not in ("./", source):
                raise ValueError(f"COPY to a path of its own this reader does not lay out: {copy}")
            for relative in matched_by(source, files):
                # Each COPY here keeps its source's path under the working folder.
                destination = target / relative
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPOSITORY / relative, destination)
