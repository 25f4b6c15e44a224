"""free_port hands out ports that outgoing connections cannot take meanwhile."""

from __future__ import annotations

import socket

from batchline.broker.local_broker import _ephemeral_ports, free_port


def test_a_free_port_is_below_the_ephemeral_range_and_can_be_listened_on() -> None:
    low, high = _ephemeral_ports()
    assert 1024 <= low < high
    for _ in range(20):
        port = free_port()
        assert 1024 <= port < low
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
            server.bind(("127.0.0.1", port))
            server.listen()
