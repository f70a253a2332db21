"""Packaging hook: the wheel carries the Alembic migrations inside the package, as app/migrations.

Everything else is declared in pyproject.toml. The source layout keeps alembic/ at the top
(where `alembic` run from a checkout finds it); an installed Tenantry has no checkout, so
build_py copies alembic/ into the built package and app.db.migrations_dir() finds it there.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class build_py_with_migrations(build_py):
    def run(self) -> None:
        super().run()
        source = Path(__file__).resolve().parent / "alembic"
        target = Path(self.build_lib) / "app" / "migrations"
        if source.is_dir() and not self.editable_mode:
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": build_py_with_migrations})
