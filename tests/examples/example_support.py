"""What the tests of examples/ share: importing an example script as a module, and running it
as a user runs it.

The examples are standalone scripts, not a package, so the tests reach them by path. Test
modules import this one by its bare name (``from example_support import ...``): with no
``__init__.py`` here, pytest puts a test module's folder on ``sys.path``.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load_example(path: Path) -> ModuleType:
    """Import an example script as a module (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module  # dataclass type hints are resolved through it
    spec.loader.exec_module(module)
    return module


def run_example(script: Path, db: Path, *args: str, timeout: float = 60) -> str:
    """Run ``script --db db *args`` in the database's folder; check that it exits with 0 and
    return what it printed."""
    result = subprocess.run(
        [sys.executable, str(script), "--db", str(db), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=db.parent,
    )
    # The output goes in the message: this module's asserts are not rewritten by pytest.
    assert result.returncode == 0, (
        f"{script.name} exited with {result.returncode}\n{result.stdout}{result.stderr}"
    )
    return result.stdout
