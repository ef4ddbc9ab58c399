"""tasks/doom_nodes.py without zdbsp: the missing node builder is a clear, typed error."""

from __future__ import annotations

import pytest

from tasks.doom_nodes import NodeBuilderMissing, build_nodes, node_builder


def test_no_zdbsp_on_the_path_says_so(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert node_builder() is None
    with pytest.raises(NodeBuilderMissing, match="zdbsp is not installed") as raised:
        build_nodes(b"PWAD")
    assert raised.value.code == "NODE_BUILDER_MISSING"


def test_a_node_builder_that_cannot_start_is_missing(tmp_path):
    with pytest.raises(NodeBuilderMissing, match="could not be started"):
        build_nodes(b"PWAD", executable=str(tmp_path / "no-such-zdbsp"))
