"""The Python guides in vignettes/ run from start to end."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

VIGNETTES = sorted((Path(__file__).resolve().parents[1] / "vignettes").glob("*.py"))


@pytest.mark.parametrize("script", VIGNETTES, ids=lambda p: p.name)
def test_vignette_runs(tmp_path, script):
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    # rpy2 (imported by other tests in this process) prepends R's library folders to LD_LIBRARY_PATH;
    # a child Python would then load Debian's libpython and fail to import ssl (measured in CI)
    env.pop("LD_LIBRARY_PATH", None)
    result = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True,
                            env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
