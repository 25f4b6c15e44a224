"""The local Apache Kafka broker that `batchline broker` and the test fixtures run."""

from batchline.broker.admin_tools import BrokerError
from batchline.broker.local_broker import (
    admin_security,
    broker_answers,
    free_port,
    grant_acls,
    start,
    stop,
    wait_ready,
)
from batchline.broker.provision import ProvisioningError, ensure_kafka_jars, kafka_version

__all__ = [
    "BrokerError",
    "ProvisioningError",
    "admin_security",
    "broker_answers",
    "ensure_kafka_jars",
    "free_port",
    "grant_acls",
    "kafka_version",
    "start",
    "stop",
    "wait_ready",
]
