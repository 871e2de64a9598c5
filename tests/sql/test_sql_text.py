"""Text that enters SQL without a bound parameter (propsync.sql.literal, quote_ident): any string
comes back from a real DuckDB as itself, never as SQL."""

from __future__ import annotations

import duckdb
from hypothesis import given, settings, strategies as st

from propsync.sql import literal, quote_ident

# Any Unicode text DuckDB stores (no NUL, no lone surrogates), with the quote characters often.
texts = st.lists(
    st.one_of(
        st.sampled_from(["'", '"', ";", "--", "\\", " ", "\n"]),
        st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
    ),
    max_size=30,
).map("".join)

_con = duckdb.connect()


@settings(max_examples=200, deadline=None)
@given(text=texts)
def test_a_literal_is_the_text_itself(text: str) -> None:
    assert _con.execute(f"SELECT {literal(text)}").fetchall() == [(text,)]


@settings(max_examples=200, deadline=None)
@given(name=texts.filter(lambda n: n.strip() != ""))
def test_a_quoted_identifier_names_the_column_exactly(name: str) -> None:
    rel = _con.execute(f"SELECT 1 AS {quote_ident(name)}")
    assert [d[0] for d in rel.description] == [name]
    rel.fetchall()


def test_hostile_text_stays_data() -> None:
    text = "x'); DROP TABLE t; --"
    _con.execute("CREATE TEMP TABLE t (v VARCHAR)")
    _con.execute(f"INSERT INTO t VALUES ({literal(text)})")
    assert _con.execute("SELECT v FROM t").fetchall() == [(text,)]
