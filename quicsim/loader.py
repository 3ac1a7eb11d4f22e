"""Find and import scenario files; a bad file is one clear ``UsageError`` (file, line, what)."""

from __future__ import annotations

import importlib.util
import sys
import traceback
from pathlib import Path

from .scenario_spec import ATTRIBUTE, ScenarioSpec
from .errors import UsageError


def _files(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(p for p in sorted(path.rglob("*.py"))
                         if not p.name.startswith(("_", ".")) and "__pycache__" not in p.parts)
        elif path.is_file():
            if path.suffix != ".py":
                raise UsageError(f"{raw}: not a Python scenario file")
            files.append(path)
        else:
            raise UsageError(f"{raw}: no such file or directory")
    return files


def _import(path: Path) -> object:
    name = f"quicsim_scenarios.{path.stem}_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"{path}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise UsageError(f"{path}:{exc.lineno}: syntax error: {exc.msg}") from None
    except Exception as exc:
        line = "?"
        for frame in reversed(traceback.extract_tb(exc.__traceback__)):
            if Path(frame.filename).resolve() == path.resolve():
                line = str(frame.lineno)
                break
        raise UsageError(f"{path}:{line}: {type(exc).__name__}: {exc}") from None
    return module


def load_scenarios(paths: list[str], keyword: str | None = None) -> list[ScenarioSpec]:
    """Every scenario in ``paths`` (files or folders), in file order, filtered by name."""
    files = _files(paths)
    if not files:
        raise UsageError(f"{' '.join(paths)}: no scenario files found")
    found: list[ScenarioSpec] = []
    for path in files:
        module = _import(path)
        specs = [value.__dict__[ATTRIBUTE] for value in vars(module).values()
                 if callable(value) and ATTRIBUTE in getattr(value, "__dict__", {})]
        specs = [s for s in specs if Path(s.file).resolve() == path.resolve()]
        if not specs and len(files) == 1:
            raise UsageError(f"{path}: no scenarios found (decorate async functions with @quicsim.scenario)")
        found.extend(sorted(specs, key=lambda s: s.line))
    if not found:
        raise UsageError(f"{' '.join(paths)}: no scenarios found")
    if keyword:
        found = [s for s in found if keyword in s.name]
        if not found:
            raise UsageError(f"-k {keyword}: no scenario name contains it")
    return found
