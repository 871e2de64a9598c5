"""``propsync demo``: the specification's story on shipped sample data, in a local warehouse."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from propsync.cli import main as cli

STEPS = [
    (
        "1. Migrate legacy data: values from a system that never tracked update times (-1).",
        ["import", "{legacy_customers.csv}", "--mapping", "{legacy_mapping.json}", "--legacy"],
    ),
    (
        "2. 09:00 real-time tracking: the web SDK sends Marian's new e-mail (update_timestamp 09:00).",
        ["track", "{tracking_0900.json}"],
    ),
    (
        "3. The CRM snapshot taken at 08:00 finishes importing at 10:00. Its values are stamped 08:00,\n"
        "   so it cannot overwrite the fresher e-mail from 09:00, but it does replace legacy values.\n"
        "   One row has no id and one age is not a number: they go to the quarantine.",
        [
            "import",
            "{crm_snapshot_0800.csv}",
            "--mapping",
            "{mapping.json}",
            "--started-at",
            "2019-10-02T08:00:00+02:00",
            "--max-reject-ratio",
            "0.5",
        ],
    ),
    (
        "4. A phone comes back online and sends a postponed call from 08:30: the e-mail is stale,\n"
        "   the new app_version is applied. The cookie links it to Marian.",
        ["track", "{postponed_sdk_0830.json}"],
    ),
    ("5. GET /api/customers/registered:mgalik", ["get", "registered:mgalik"]),
    (
        "6. GET /api/customers/registered:mgalik?include_timestamps=1",
        ["get", "registered:mgalik", "--include-timestamps"],
    ),
]


def run_demo(warehouse: Path) -> int:
    if warehouse.exists():
        shutil.rmtree(warehouse)
    samples = resources.files("propsync") / "samples"
    with resources.as_file(samples) as folder:
        for title, args in STEPS:
            print(f"\n== {title}")
            argv = [str(Path(folder) / a.strip("{}")) if a.startswith("{") else a for a in args]
            argv += ["--warehouse", str(warehouse)]
            print("$ propsync " + " ".join(argv))
            code = cli(argv)
            if code != 0:
                print(f"demo step failed with exit code {code}")
                return code
    db = warehouse / "propsync.duckdb"
    print(
        f"\nThe published warehouse is {db}. Query it read-only, e.g.:\n"
        f"  .venv/bin/propsync sql --warehouse {warehouse} "
        '"SELECT * FROM customer_properties ORDER BY customer_id, property"\n'
        f"  .venv/bin/propsync sql --warehouse {warehouse}   (a prompt; or DuckDB's own shell: "
        f"duckdb -readonly {db})"
    )
    return 0
