"""The read model keyed by integers against today's text ids: size, a fold's CPU, a follow's append.

    .venv/bin/python bench/bench_read_model_keys.py bench/out/api/run/serving/read_model.sqlite

A prototype for docs/store-redesign.md step 10, not the shipped model. Copies the model (a
``bench_api.py`` run's, 1M x 10), replaces its segments by ``--rows`` recent rows (random customers
x 2 properties) split into each count of ``--segments``, builds the same rows keyed by integers
(``customers``: text id -> key, ``names``: property -> id), then times on fresh copies, alternating
the two layouts ``--rounds`` times: a fold of every segment in 16 slices (the shipped statement's
form: the newest row of each key by ``GROUP BY``, upsert, delete, checkpoint) and the append of a
follow of 50k rows (text: as shipped; integers: keys looked up through a join first).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

from propsync.store.read_model import slice_bounds

SLICES = 16
PROPS = ("last_seen_app", "prop_0")


def _connect(path: Path, *, bulk: bool = False) -> sqlite3.Connection:
    con = sqlite3.connect(path, isolation_level=None)
    if bulk:
        con.execute("PRAGMA journal_mode = OFF")
        con.execute("PRAGMA synchronous = OFF")
        con.execute("PRAGMA cache_size = -262144")
    else:  # as the follower's writer
        con.execute("PRAGMA journal_mode = WAL")
        con.execute("PRAGMA synchronous = NORMAL")
        con.execute("PRAGMA wal_autocheckpoint = 0")
    return con


def text_model(source: Path, dest: Path, rows: int, segments: int, seed: int) -> None:
    """The model with ``rows`` recent rows in ``segments`` segments, each in key order."""
    shutil.copy(source, dest)
    con = _connect(dest, bulk=True)
    con.execute("PRAGMA journal_mode = DELETE")  # the copy may carry a WAL's pages: fold them in
    ids = [r[0] for r in con.execute("SELECT DISTINCT customer_id FROM customer_ids")]
    rng = random.Random(seed)
    recent = [
        (cid, p, f'"v{n}"', 1_800_000_000_000_000)
        for n, cid in enumerate(rng.sample(ids, rows // len(PROPS)))
        for p in PROPS
    ]
    rng.shuffle(recent)
    per = len(recent) // segments
    con.execute("BEGIN")
    con.execute("DELETE FROM recent_properties")
    con.execute("DELETE FROM recent_segments")
    for seg in range(1, segments + 1):
        part = sorted(recent[(seg - 1) * per : seg * per])
        con.executemany(
            "INSERT INTO recent_properties VALUES (?, ?, ?, ?, ?)", ((seg, *r) for r in part)
        )
        con.execute("INSERT INTO recent_segments VALUES (?, 0, ?)", (seg, len(part)))
    con.execute("COMMIT")
    con.execute("VACUUM")
    con.close()


def integer_model(text: Path, dest: Path) -> None:
    """The same rows keyed by integers (the text ids' order gives the keys)."""
    con = _connect(dest, bulk=True)
    con.execute("ATTACH ? AS t", (str(text),))
    con.execute("BEGIN")
    for statement in (
        "CREATE TABLE customers (customer_id TEXT NOT NULL PRIMARY KEY,"
        " customer_key INTEGER NOT NULL)",
        "INSERT INTO customers SELECT customer_id, row_number() OVER (ORDER BY customer_id)"
        " FROM (SELECT DISTINCT customer_id FROM t.customer_ids)",
        "CREATE TABLE names (property TEXT NOT NULL PRIMARY KEY, property_id INTEGER NOT NULL)",
        "INSERT INTO names SELECT property, row_number() OVER (ORDER BY property) FROM"
        " (SELECT property FROM t.properties UNION SELECT property FROM t.recent_properties)",
        "CREATE TABLE properties (customer_key INTEGER NOT NULL, property_id INTEGER NOT NULL,"
        " value TEXT NOT NULL, update_ts INTEGER, PRIMARY KEY (customer_key, property_id))"
        " WITHOUT ROWID",
        "INSERT INTO properties SELECT c.customer_key, n.property_id, p.value, p.update_ts"
        " FROM t.properties AS p JOIN customers AS c USING (customer_id)"
        " JOIN names AS n USING (property) ORDER BY 1, 2",
        "CREATE TABLE recent_properties (seg INTEGER NOT NULL, customer_key INTEGER NOT NULL,"
        " property_id INTEGER NOT NULL, value TEXT NOT NULL, update_ts INTEGER,"
        " PRIMARY KEY (seg, customer_key, property_id)) WITHOUT ROWID",
        "INSERT INTO recent_properties SELECT r.seg, c.customer_key, n.property_id, r.value,"
        " r.update_ts FROM t.recent_properties AS r JOIN customers AS c USING (customer_id)"
        " JOIN names AS n USING (property) ORDER BY 1, 2, 3",
        "CREATE TABLE recent_segments (seg INTEGER NOT NULL PRIMARY KEY,"
        " level INTEGER NOT NULL, rows INTEGER NOT NULL)",
        "INSERT INTO recent_segments SELECT * FROM t.recent_segments",
    ):
        con.execute(statement)
    con.execute("COMMIT")
    con.execute("DETACH t")
    con.execute("VACUUM")
    con.close()


def table_mib(path: Path, table: str) -> float:
    """The pages of ``table``'s B-tree, in MiB (SQLite's ``dbstat``; NaN where it is missing)."""
    con = sqlite3.connect(path)
    try:
        rows = con.execute("SELECT sum(pgsize) FROM dbstat WHERE name = ?", (table,)).fetchall()
        return float(rows[0][0]) / 2**20
    except sqlite3.OperationalError:
        return float("nan")
    finally:
        con.close()


def fold(path: Path, integer: bool) -> float:
    """CPU seconds to fold every segment, in slices as the follower does."""
    key, prop = ("customer_key", "property_id") if integer else ("customer_id", "property")
    upsert = (
        f"WITH newest AS (SELECT {key}, {prop}, value, update_ts, max(seg) AS seg"
        " FROM recent_properties WHERE seg IN (SELECT seg FROM recent_segments)"
        f" AND {key} >= :lo AND {key} < :hi GROUP BY {key}, {prop})"
        f" INSERT INTO properties ({key}, {prop}, value, update_ts)"
        f" SELECT {key}, {prop}, value, update_ts FROM newest WHERE true ORDER BY {key}, {prop}"
        f" ON CONFLICT ({key}, {prop}) DO UPDATE SET value = excluded.value,"
        " update_ts = excluded.update_ts"
    )
    delete = f"DELETE FROM recent_properties WHERE {key} >= :lo AND {key} < :hi"
    con = _connect(path)
    if integer:
        top = con.execute("SELECT max(customer_key) + 1 FROM customers").fetchall()[0][0]
        bounds: list[tuple[object, object]] = [
            (i * top // SLICES, (i + 1) * top // SLICES if i < SLICES - 1 else 2**62)
            for i in range(SLICES)
        ]
    else:
        bounds = [slice_bounds(i, SLICES) for i in range(SLICES)]
    started = time.process_time()
    for lo, hi in bounds:
        con.execute("BEGIN IMMEDIATE")
        con.execute(upsert, {"lo": lo, "hi": hi})
        con.execute(delete, {"lo": lo, "hi": hi})
        con.execute("COMMIT")
        con.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    spent = time.process_time() - started
    con.close()
    return spent


def append(path: Path, integer: bool, seed: int, follows: int = 5) -> float:
    """CPU microseconds a row to append follows of 25k customers x 2 properties."""
    con = _connect(path)
    listing = "customers" if integer else "customer_ids"
    ids = [r[0] for r in con.execute(f"SELECT DISTINCT customer_id FROM {listing}")]
    rng = random.Random(seed)
    spent, rows_done = 0.0, 0
    for n in range(follows):
        rows = sorted((cid, p, f'"x{n}"', 1) for cid in rng.sample(ids, 25_000) for p in PROPS)
        seg = 10_000 + n
        started = time.process_time()
        con.execute("BEGIN IMMEDIATE")
        if integer:
            con.execute(
                "CREATE TEMP TABLE IF NOT EXISTS run_rows (customer_id TEXT, property TEXT,"
                " value TEXT, update_ts INTEGER)"
            )
            con.execute("DELETE FROM run_rows")
            con.executemany("INSERT INTO run_rows VALUES (?, ?, ?, ?)", rows)
            con.execute(
                "INSERT INTO recent_properties SELECT ?, c.customer_key, n.property_id, r.value,"
                " r.update_ts FROM run_rows AS r JOIN customers AS c USING (customer_id)"
                " JOIN names AS n USING (property) ORDER BY 2, 3",
                (seg,),
            )
        else:
            con.executemany(
                "INSERT INTO recent_properties VALUES (?, ?, ?, ?, ?)", ((seg, *r) for r in rows)
            )
        con.execute("COMMIT")
        spent += time.process_time() - started
        rows_done += len(rows)
    con.close()
    return spent / rows_done * 1e6


def fresh(source: Path, work: Path) -> Path:
    dest = work / "measured.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{dest}{suffix}").unlink(missing_ok=True)
    shutil.copy(source, dest)
    with open(dest, "rb") as f:  # the page cache warm alike for both layouts
        while f.read(1 << 24):
            pass
    return dest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", type=Path, help="a read_model.sqlite (copied, never changed)")
    ap.add_argument("--rows", type=int, default=1_600_000)
    ap.add_argument("--segments", default="8,28")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--work", type=Path, default=None, help="scratch directory (default: /tmp)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rm-keys-", dir=args.work))
    try:
        for segments in (int(s) for s in args.segments.split(",")):
            text, integer = work / f"text-{segments}.sqlite", work / f"int-{segments}.sqlite"
            text_model(args.model, text, args.rows, segments, seed=segments)
            integer_model(text, integer)
            print(
                f"{segments} segments: properties {table_mib(text, 'properties'):.0f} MiB (text)"
                f" / {table_mib(integer, 'properties'):.0f} MiB (integers); files"
                f" {os.path.getsize(text) / 2**20:.0f} / {os.path.getsize(integer) / 2**20:.0f} MiB"
                " (the integer file has no customer_ids)",
                flush=True,
            )
            for _ in range(args.rounds):
                for label, path, is_int in (("text", text, False), ("integers", integer, True)):
                    cpu = fold(fresh(path, work), is_int)
                    per_row = append(fresh(path, work), is_int, seed=segments)
                    print(
                        f"  {label:>8}: fold {cpu:.1f} s CPU; append {per_row:.2f} us CPU a row",
                        flush=True,
                    )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
