"""A fixed port that another process already listens on is refused before anything starts."""

from __future__ import annotations

import socket

import pytest

from {{ cookiecutter.package }}.deploy.servers import HOST, DeployError, port_for


def test_a_port_in_use_is_a_clear_error() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other:
        other.bind((HOST, 0))
        other.listen()
        taken = other.getsockname()[1]
        with pytest.raises(DeployError, match=rf"port {taken} .* serve\.staging_port"):
            port_for(taken, "staging_port")


def test_zero_means_any_free_port_and_a_free_port_is_kept() -> None:
    chosen = port_for(0, "router_port")
    assert chosen > 0
    assert port_for(chosen, "router_port") == chosen
