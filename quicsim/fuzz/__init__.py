"""quicsim fuzz: random API programs on the in-memory link, shrunk to scenario files."""

from .engine import Finding, check_seed, reproduces, run_program, shrink, signature, write_finding
from .program import Program, generate
from .render import render

__all__ = ["Finding", "Program", "check_seed", "generate", "render", "reproduces", "run_program", "shrink",
           "signature", "write_finding"]
