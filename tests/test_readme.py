"""The README's host example stays true: it runs as written from the repository root,
prints what its comment says, and passes ``mypy --strict``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_DIR = REPO_ROOT / "examples" / "rule-engine"


def host_example() -> str:
    """The README's first Python block (the host side)."""
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("```python\n") + len("```python\n")
    return text[start : text.index("```\n", start)]


def test_readme_host_example_runs_and_type_checks(wasm_dir: Path, tmp_path: Path) -> None:
    """The example loads build/wasm/ops_thresholds.wasm through the generated bindings,
    prints the alert its comment shows, and mypy --strict accepts it."""
    assert (wasm_dir / "ops_thresholds.wasm").is_file()
    script = tmp_path / "readme_host.py"
    script.write_text(host_example(), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(EXAMPLE_DIR), "MYPYPATH": str(EXAMPLE_DIR)}
    run = subprocess.run(
        [sys.executable, str(script)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[0] == "cancelled-watched Severity.INFO UA1545 to SFO cancelled"
    assert run.stdout.splitlines()[-1] == "requested 4, granted 4, denied 0, unrequested 0"
    mypy = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(script)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert mypy.returncode == 0, mypy.stdout + mypy.stderr
