"""What the plugin keeps in pytest's ``config.stash``: present only when cnnbench is switched on."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    pass

SESSION = pytest.StashKey["CnnbenchSession"]()
PYTEST_SESSION = pytest.StashKey[pytest.Session]()
