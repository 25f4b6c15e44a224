"""Writes the JSON Schemas of the Kafka payloads to docs/schemas/, for producers and consumers
outside this repo: ``python -m schemas.export [DIR]``. A test keeps the files current."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from schemas.events import EVENT_MODELS

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "docs" / "schemas"


def schema_files() -> dict[str, str]:
    """File name -> JSON text of every payload's schema."""
    return {
        f"{model.__name__}.schema.json": json.dumps(model.model_json_schema(), indent=2) + "\n"
        for model in EVENT_MODELS
    }


def export(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in schema_files().items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in export(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DIR):
        print(path)
