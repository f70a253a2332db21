"""A model attribute renamed without its statements fails when the app is built, not at run time."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.core.config import ROOT


@pytest.mark.parametrize("attribute", ["stock_quantity", "description"])
def test_renaming_a_model_attribute_alone_makes_create_app_fail(tmp_path: Path, attribute: str):
    shutil.copytree(ROOT / "app", tmp_path / "app", ignore=shutil.ignore_patterns("__pycache__"))
    models = tmp_path / "app" / "items" / "models.py"
    source = models.read_text()
    assert f"    {attribute}: Mapped" in source
    models.write_text(source.replace(f"    {attribute}: Mapped", f"    renamed_{attribute}: Mapped"))
    build = "from app.main import create_app; create_app(); print('built')"
    result = subprocess.run([sys.executable, "-c", build], cwd=tmp_path, capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path)}, timeout=120)
    assert result.returncode != 0 and "built" not in result.stdout
    assert attribute in result.stderr, result.stderr[-2000:]


def test_the_unchanged_app_builds(tmp_path: Path):
    shutil.copytree(ROOT / "app", tmp_path / "app", ignore=shutil.ignore_patterns("__pycache__"))
    build = "from app.main import create_app; create_app(); print('built')"
    result = subprocess.run([sys.executable, "-c", build], cwd=tmp_path, capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path)}, timeout=120)
    assert result.returncode == 0 and "built" in result.stdout, result.stderr[-2000:]
