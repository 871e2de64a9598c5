"""The installed package as Airflow and importlib.metadata see it: one distribution, so Airflow
registers the propsync plugin once (a second copy of the metadata under src/, which an editable
install puts on sys.path, made every Airflow process log "Plugin 'propsync' already registered")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_plugin_entry_point_is_found_once(tmp_path: Path) -> None:
    script = (
        "import json; from importlib.metadata import distributions as d; "
        "print(json.dumps([str(x._path) for x in d() if x.metadata['Name'] == 'propsync' "
        "and any(e.group == 'airflow.plugins' for e in x.entry_points)]))"
    )
    # Not from the project root, whose egg-info a plain `python` would also find through ''.
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout
    found = json.loads(out)
    assert len(found) == 1, f"propsync's metadata found {len(found)} times: {found}"
    stale = ROOT / "src" / "propsync.egg-info"
    assert not stale.exists(), f"remove {stale} (left by an install before setup.cfg's egg_base)"
