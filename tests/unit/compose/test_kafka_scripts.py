"""compose/kafka/grant-acls.sh grants what `batchline broker --auth` grants, no more, no less."""

from __future__ import annotations

import shlex

from batchline.broker.auth import acl_arguments
from tests.unit.compose.artifacts import COMPOSE_DIR

GRANT_ACLS = COMPOSE_DIR / "kafka" / "grant-acls.sh"


def test_the_compose_acls_are_the_local_brokers() -> None:
    granted = [
        shlex.split(line.replace('"$PREFIX', '"acme'))[1:]
        for line in GRANT_ACLS.read_text().splitlines()
        if line.startswith("acls --allow-principal")
    ]
    assert granted == acl_arguments("acme")
