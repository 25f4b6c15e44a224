"""The record stream: single records, not batches, in and out, one for one.

A producer writes each record as a JSON object onto ``<prefix>.records`` (or, with a principal of
its own, onto ``<prefix>.records.<namespace>``), naming its pipeline in the
``batchline-pipeline`` header (``name`` or ``name@version``; absent: ``default``). For each
record a worker writes one record onto ``<prefix>.record-results``, keyed as the input was:

- transformed: the pipeline's output object; header ``batchline-outcome: transformed``;
- dropped by a filter: the JSON ``null``; header ``batchline-outcome: filtered``;

with ``batchline-pipeline`` (the version that ran), ``batchline-source`` (``partition@offset``
of the input) and, for a record from a producer's own topic, ``batchline-producer`` (its
namespace: only that producer's principal can have written it; the header is the worker's,
never copied from the input). After a worker crash a record may come out twice: dedupe by the
source and the producer. A record that cannot be transformed goes to ``<prefix>.dead-letters``
instead, with a code and, for invalid fields, ``errors``: ``{row, field, reason}`` where ``row``
is the record's offset. Never a value.

There is no batch, store or progress here: the stream's state is its consumer group's offsets
(``<prefix>-records``), committed only after a group's outputs are acknowledged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from schemas import jsonio
from streams.admission import DeadLetterCode
from streams.dead_letters import DeadLetter, SourceMessage, dead_letter_message
from streams.outputs import Outgoing, Outputs
from streams.retry import retry_transient
from streams.topics import TopicNames
from telemetry.metrics import Metrics
from transforms import PipelineRegistry, UnknownPipelineError

log = logging.getLogger(__name__)
PIPELINE_HEADER = "batchline-pipeline"
OUTCOME_HEADER = "batchline-outcome"
SOURCE_HEADER = "batchline-source"
PRODUCER_HEADER = "batchline-producer"
DEFAULT_PIPELINE = "default"
MAX_PIPELINE_REF = 200


def records_group_id(topic_prefix: str) -> str:
    return f"{topic_prefix}-records"


@dataclass(slots=True)
class RecordGroup:
    outgoing: list[Outgoing] = field(default_factory=list)
    decisions: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)


class RecordHandler:
    """Transforms a group of records; sends their outputs and dead letters in one round."""

    def __init__(
        self,
        *,
        registry: PipelineRegistry,
        outputs: Outputs,
        metrics: Metrics,
        topics: TopicNames,
    ) -> None:
        self._registry = registry
        self._outputs = outputs
        self._metrics = metrics
        self._topics = topics

    async def handle(self, messages: Sequence[SourceMessage]) -> list[str]:
        group = await self.prepare(messages)
        await self.apply(group)
        return group.decisions

    async def prepare(self, messages: Sequence[SourceMessage]) -> RecordGroup:
        group = RecordGroup()
        now = datetime.now(UTC)
        for position, message in enumerate(messages):
            decision, outgoing = self._record(position, message, now)
            group.decisions.append(decision)
            group.outgoing.append(outgoing)
        return group

    async def apply(self, group: RecordGroup) -> None:
        if group.outgoing:
            await retry_transient("send records", lambda: self._outputs.send(group.outgoing))
        processed = group.decisions.count("transformed")
        filtered = group.decisions.count("filtered")
        self._metrics.processed.labels(stage="streamed").inc(processed)
        self._metrics.filtered.labels(stage="streamed").inc(filtered)

    def _record(self, position: int, message: SourceMessage, now: datetime) -> tuple[str, Outgoing]:
        ref = _pipeline_ref(message)
        if ref is None:
            return self._letter(position, message, DeadLetterCode.INVALID_RECORD, "Header", now)
        try:
            record = jsonio.loads(message.value)
        except jsonio.JSONDecodeError:
            return self._letter(position, message, DeadLetterCode.UNDECODABLE, "JSON", now)
        if not isinstance(record, dict):
            return self._letter(position, message, DeadLetterCode.INVALID_RECORD, "Shape", now)
        try:
            pipeline = self._registry.get_or_reload(ref)
            outcome = pipeline.run([record], message.offset)
        except UnknownPipelineError as exc:
            code = DeadLetterCode.UNKNOWN_PIPELINE
            return self._letter(position, message, code, type(exc).__name__, now)
        except Exception as exc:  # noqa: BLE001 - a record that breaks the engine is a dead letter
            code = DeadLetterCode.PIPELINE_FAILED
            return self._letter(position, message, code, type(exc).__name__, now)
        if outcome.errors:
            errors = [error.as_dict() for error in outcome.errors]
            self._metrics.errors.labels(error_type="validation").inc(len(errors))
            code = DeadLetterCode.INVALID_RECORD
            return self._letter(position, message, code, "Validation", now, errors)
        if outcome.results:
            value, decision = jsonio.dumps(outcome.results[0]), "transformed"
        else:
            value, decision = b"null", "filtered"
        headers = [
            (PIPELINE_HEADER, pipeline.ref.encode()),
            (SOURCE_HEADER, f"{message.partition}@{message.offset}".encode()),
            (OUTCOME_HEADER, decision.encode()),
        ]
        producer = self._topics.records_namespace(message.topic)
        if producer is not None:
            headers.append((PRODUCER_HEADER, producer.encode()))
        return decision, Outgoing(self._topics.record_results, message.key, value, tuple(headers))

    def _letter(
        self,
        position: int,
        message: SourceMessage,
        code: DeadLetterCode,
        error_type: str,
        now: datetime,
        errors: list[dict[str, object]] | None = None,
    ) -> tuple[str, Outgoing]:
        letter = DeadLetter(position, message, code, error_type, errors=errors)
        return "dead-lettered", dead_letter_message(
            letter, self._topics.dead_letters, self._metrics, now
        )


def _pipeline_ref(message: SourceMessage) -> str | None:
    """The pipeline the record names (the default when it names none), or None when the
    header is repeated or not a short UTF-8 text."""
    found = [value for name, value in message.headers if name == PIPELINE_HEADER]
    if not found:
        return DEFAULT_PIPELINE
    if len(found) > 1 or len(found[0]) > MAX_PIPELINE_REF:
        return None
    try:
        ref = found[0].decode()
    except UnicodeDecodeError:
        return None
    return ref.strip() or None
