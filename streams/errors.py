"""Exceptions of the streams package."""


class StreamsError(Exception):
    """Root of the streams package's errors."""


class KafkaUnavailable(StreamsError):
    """Kafka did not answer or did not acknowledge in time; the caller may retry later."""


class ChunkTooLarge(StreamsError):
    """A chunk message is over the topics' size limit; a smaller batch_size fixes it."""


class WorkerCannotStart(StreamsError):
    """The worker cannot start as configured; the message says what to change."""


class TopicCreationFailed(StreamsError):
    """The broker refused to create a topic: a policy, the replication factor, ..."""
