"""The pipelines this API serves, and checking a spec (with a dry run) before deploying it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from api.body import parse_json, read_body, require_json, validate_model
from api.deps import Caller, State
from api.errors import ApiError
from api.routes.batches import ERRORS
from schemas import jsonio
from schemas.http import ErrorCode
from schemas.pipelines_http import (
    PipelineCheck,
    PipelineCheckResult,
    PipelineDetail,
    PipelineList,
    PipelineSummary,
    PipelineVersion,
)
from transforms import CompiledPipeline
from transforms.errors import SpecError, UnknownPipelineError
from transforms.registry import compile_spec, output_fields, parse_spec, validate_spec

router = APIRouter(prefix="/api/v1/pipelines", tags=["pipelines"])
# What a checked spec is called in its error lines (start-up names the file instead).
CHECKED_ORIGIN = "spec"


def _version(pipeline: CompiledPipeline) -> PipelineVersion:
    return PipelineVersion(
        ref=pipeline.ref,
        version=pipeline.version,
        digest=pipeline.digest,
        description=pipeline.spec.description,
        output_fields=output_fields(pipeline.spec),
    )


@router.get("", operation_id="list_pipelines", response_model=PipelineList, responses=ERRORS)
async def list_pipelines(state: State, caller: Caller) -> PipelineList:
    """Every loaded pipeline with its versions, their digests and output fields."""
    by_name: dict[str, list[CompiledPipeline]] = {}
    for pipeline in state.registry.pipelines():
        by_name.setdefault(pipeline.name, []).append(pipeline)
    return PipelineList(
        pipelines=[
            PipelineSummary(
                name=name,
                newest=versions[-1].ref,
                versions=[_version(pipeline) for pipeline in versions],
            )
            for name, versions in by_name.items()
        ]
    )


@router.get("/{ref}", operation_id="read_pipeline", response_model=PipelineDetail, responses=ERRORS)
async def read_pipeline(ref: str, state: State, caller: Caller) -> PipelineDetail:
    """One pipeline's spec: `name@version`, or `name` for its newest version."""
    try:
        pipeline = state.registry.get(ref)
    except UnknownPipelineError as exc:
        raise ApiError(404, ErrorCode.NOT_FOUND, str(exc)) from None
    return PipelineDetail(
        **_version(pipeline).model_dump(),
        name=pipeline.name,
        spec=pipeline.spec.model_dump(mode="json"),
    )


@router.post(
    "/validate",
    operation_id="validate_pipeline",
    response_model=PipelineCheckResult,
    responses=ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": PipelineCheck.model_json_schema()}},
        }
    },
)
async def validate_pipeline(request: Request, state: State, caller: Caller) -> Response:
    """Check a spec as start-up would; with `sample`, transform it as a dry run."""
    require_json(request)
    # Read by hand, as a batch is: the sample's amounts stay exact decimals.
    check = validate_model(
        PipelineCheck, parse_json(await read_body(request, state.settings.max_body_bytes))
    )
    hash_secret = state.settings.hash_secret.get_secret_value().encode()
    try:
        spec = (
            parse_spec(CHECKED_ORIGIN, check.spec)
            if isinstance(check.spec, str)
            else validate_spec(CHECKED_ORIGIN, check.spec)
        )
        pipeline = compile_spec(CHECKED_ORIGIN, spec, hash_secret, cache_size=0)
    except SpecError as exc:
        return _answer({"valid": False, "errors": [str(exc)]})
    checked: dict[str, Any] = {
        "valid": True,
        "errors": [],
        "ref": pipeline.ref,
        "digest": pipeline.digest,
        "output_fields": output_fields(spec),
    }
    if check.sample is not None:
        outcome = pipeline.run(check.sample)
        checked["dry_run"] = {
            "results": outcome.results,
            "filtered": outcome.filtered,
            "errors": [error.as_dict() for error in outcome.errors],
        }
    return _answer(checked)


def _answer(body: dict[str, Any]) -> Response:
    # jsonio keeps each amount's scale in the dry run's results, as in a batch's.
    return Response(jsonio.dumps(body), media_type="application/json")
