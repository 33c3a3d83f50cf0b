"""Nodes as the servers domain names them."""

from __future__ import annotations

import re

from app.shared.domain import InvalidInput

NODE_NAME = r"^[a-z0-9][a-z0-9-]{0,62}$"
"""A node's name, as `mcdash worker --node` and MCDASH_NODE_NAME take it."""


def validate_node_name(name: str) -> str:
    if not re.fullmatch(NODE_NAME, name):
        raise InvalidInput(
            "a node name is 1-63 lowercase letters, digits and '-', starting with a letter or"
            " digit",
            field="node",
        )
    return name
