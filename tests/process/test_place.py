"""Placement's solver module in a fresh interpreter: OR-Tools' cp_model is imported without
pandas (which it would pull in: ~0.6 s of every command's start-up), and a later `import
pandas` still gets the real one. Placement itself: tests/unit/test_place.py."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.process


def test_cp_model_is_imported_without_pandas_and_pandas_still_works() -> None:
    import subprocess
    import sys

    code = ("import sys; from dockyard.plan.place import cp_model_module; "
            "m = cp_model_module(); assert m.CpModel; assert 'pandas' not in sys.modules; "
            "import pandas; assert pandas.Series.__module__.startswith('pandas')")
    subprocess.run([sys.executable, "-c", code], check=True)
