"""The local Apache Kafka broker that `batchline broker` and the test fixtures run."""

from batchline.broker.local_broker import (
    BrokerError,
    broker_answers,
    free_port,
    start,
    stop,
    wait_ready,
)
from batchline.broker.provision import ProvisioningError, ensure_kafka_jars, kafka_version

__all__ = [
    "BrokerError",
    "ProvisioningError",
    "broker_answers",
    "ensure_kafka_jars",
    "free_port",
    "kafka_version",
    "start",
    "stop",
    "wait_ready",
]
