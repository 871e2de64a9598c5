"""Any set of updates, applied in any order and any split into batches, gives the same published
state as a brute-force reference model (duplicates, equal timestamps and legacy values included).

Hard-id conflicts are excluded by construction: which of two conflicting updates is rejected
depends on arrival order by design, so no order-free reference exists for them.
"""

from __future__ import annotations

import itertools
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings as hyp_settings, strategies as st

from propsync.config import Settings
from propsync.store.apply import apply_batch, publish_pending
from propsync.store.warehouse import Warehouse
from propsync.values import canonical_json
from tests.helpers import Update, make_batch, published_state

# Each person owns a registered id, a cookie and an email; an update names a non-empty subset of
# one person's ids, so customers merge as ids meet but two registered values never do.
PERSONS = 3
ids_of_person = {
    p: [("registered", f"r{p}"), ("cookie", f"k{p}"), ("email", f"e{p}")] for p in range(PERSONS)
}

update_st = st.builds(
    lambda person, mask, prop, value, ts: (
        dict(ids_of_person[person][i] for i in range(3) if mask & (1 << i)),
        prop,
        value,
        ts,
    ),
    st.integers(0, PERSONS - 1),
    st.integers(1, 7),
    st.sampled_from(["name", "age", "tags"]),
    st.sampled_from(["x", "y", 1, 2.5, None, True, ["a", 1], {"k": "v"}, "é"]),
    st.one_of(st.none(), st.sampled_from([1.0, 2.0, 2.000001, 3.5])),
)


def reference(
    updates: list[Update],
) -> dict[frozenset[tuple[str, str]], dict[str, tuple[Any, int | None]]]:
    """Connected components of ids; per property the maximum of (time, legacy lowest; value text)."""
    parent: dict[tuple[str, str], tuple[str, str]] = {}

    def find(x: tuple[str, str]) -> tuple[str, str]:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for ids, *_ in updates:
        first, *rest = ids.items()
        find(first)
        for other in rest:
            parent[find(other)] = find(first)
    components: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for x in list(parent):
        components.setdefault(find(x), set()).add(x)
    best: dict[tuple[tuple[str, str], str], tuple[int, bytes, Any, int | None]] = {}
    for ids, prop, value, ts in updates:
        root = find(next(iter(ids.items())))
        us = None if ts is None else round(ts * 1_000_000)
        key = (-1 if us is None else us, canonical_json(value).encode())
        cur = best.get((root, prop))
        if cur is None or key > cur[:2]:
            best[(root, prop)] = (*key, value, us)
    state: dict[frozenset[tuple[str, str]], dict[str, tuple[Any, int | None]]] = {
        frozenset(c): {} for c in components.values()
    }
    for (root, prop), (_, _, value, us) in best.items():
        state[frozenset(components[root])][prop] = (json.loads(canonical_json(value)), us)
    return state


@hyp_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    updates=st.lists(update_st, min_size=1, max_size=14),
    data=st.data(),
)
def test_any_order_and_batching_gives_the_reference_state(
    updates: list[Update], data: st.DataObject
) -> None:
    order = data.draw(st.permutations(range(len(updates))), label="order")
    cuts = sorted(
        data.draw(st.sets(st.integers(1, max(1, len(updates) - 1)), max_size=3), label="cuts")
    )
    shuffled = [updates[i] for i in order]
    bounds = [0, *[c for c in cuts if c < len(shuffled)], len(shuffled)]
    batches = [shuffled[a:b] for a, b in itertools.pairwise(bounds) if b > a]
    with tempfile.TemporaryDirectory() as tmp:
        wh = Warehouse(Path(tmp) / "wh")
        s = Settings(warehouse=wh.root)
        for i, batch in enumerate(batches):
            # Publishing only at the end keeps the test fast; replaying a batch must change nothing.
            apply_batch(wh, make_batch(f"b{i}", batch), s, max_reject_ratio=0.0, publish=False)
        apply_batch(wh, make_batch("b0", batches[0]), s, max_reject_ratio=0.0, publish=False)
        publish_pending(wh, s)
        assert published_state(wh) == reference(updates)
