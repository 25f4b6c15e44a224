"""HTTP bodies of the pipeline endpoints: what is loaded, and checking a spec before using it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from schemas.http import RowErrorBody

MAX_SAMPLE_RECORDS = 1000


class PipelineVersion(BaseModel):
    ref: str = Field(description="name@version: what a batch's `pipeline` names")
    version: int
    digest: str = Field(description="SHA-256 of the spec's canonical JSON")
    description: str
    output_fields: list[str] = Field(description="The fields of an output record, in order")


class PipelineSummary(BaseModel):
    name: str
    newest: str = Field(description="The ref that `name` alone means")
    versions: list[PipelineVersion]


class PipelineList(BaseModel):
    pipelines: list[PipelineSummary]


class PipelineDetail(PipelineVersion):
    name: str
    spec: dict[str, Any] = Field(description="The spec as loaded (docs/pipelines.md)")


class PipelineCheck(BaseModel):
    """A spec to check, and optionally records to run it over (nothing is stored or sent)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "spec": {
                        "name": "orders",
                        "version": 1,
                        "fields": [{"source": "amt", "target": "amount", "parse": "decimal"}],
                    },
                    "sample": [{"amt": "100.50"}],
                }
            ]
        },
    )

    spec: dict[str, Any] | str = Field(
        description="The spec as an object, or the text of a YAML or JSON spec file"
    )
    sample: list[Any] | None = Field(
        None, max_length=MAX_SAMPLE_RECORDS, description="Records to transform as a dry run"
    )


class DryRun(BaseModel):
    results: list[dict[str, Any]]
    filtered: int
    errors: list[RowErrorBody]


class PipelineCheckResult(BaseModel):
    valid: bool
    errors: list[str] = Field(description="One line per problem, as start-up would report it")
    ref: str | None = None
    digest: str | None = None
    output_fields: list[str] | None = None
    dry_run: DryRun | None = None
