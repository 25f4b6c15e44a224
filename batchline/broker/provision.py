"""Brings the Apache Kafka jars onto this machine from Maven Central, once.

The broker is a plain JVM process started from the jars that ``pom.xml`` beside this file names.
Maven resolves them into ``~/.m2`` (its own cache) and copies them into a folder keyed by the
pom's digest, so an edited pom gets a fresh folder and an unchanged one is never resolved again.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from batchline.errors import BatchlineError

POM_PATH = Path(__file__).with_name("pom.xml")
LOG4J_CONFIG_PATH = Path(__file__).with_name("log4j2.properties")
READY_MARKER = ".complete"


class ProvisioningError(BatchlineError):
    """The Kafka jars could not be resolved."""


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "batchline" / "kafka"


def libs_dir() -> Path:
    digest = hashlib.sha256(POM_PATH.read_bytes()).hexdigest()[:16]
    return cache_root() / digest / "libs"


def ensure_kafka_jars(*, quiet: bool = True) -> Path:
    """Returns the folder of the broker's jars, resolving them with Maven when missing."""
    target = libs_dir()
    if (target / READY_MARKER).exists():
        return target
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ProvisioningError(
            "Maven (mvn) is not on PATH: install it (apt-get install maven) to provision Kafka, "
            "or point BATCHLINE_KAFKA_BOOTSTRAP at a running broker."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    # Resolve into a scratch folder and rename: a run cut short never leaves a half-filled cache.
    scratch = Path(tempfile.mkdtemp(prefix="libs-", dir=target.parent))
    command = [
        mvn,
        "-B",
        *(["-q"] if quiet else []),
        "-f",
        str(POM_PATH),
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={scratch}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        shutil.rmtree(scratch, ignore_errors=True)
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-20:])
        raise ProvisioningError(f"Maven could not resolve the Kafka jars:\n{tail}")
    (scratch / READY_MARKER).write_text("ok\n")
    if target.exists():
        shutil.rmtree(target)
    scratch.rename(target)
    return target


def kafka_version() -> str:
    """The Kafka version the pom pins, read from its properties."""
    text = POM_PATH.read_text()
    start = text.index("<kafka.version>") + len("<kafka.version>")
    return text[start : text.index("</kafka.version>", start)]
