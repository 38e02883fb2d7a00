"""Hypothesis strategies shared by the codec and transform tests."""

from __future__ import annotations

from hypothesis import strategies as st

# Any value Avro's numeric and boolean primitives admit (NaN left out: it equals nothing).
NUMBERS_AND_BOOLEANS: dict[str, st.SearchStrategy] = {
    "int": st.integers(-(2**31), 2**31 - 1),
    "long": st.integers(-(2**63), 2**63 - 1),
    "boolean": st.booleans(),
    "float": st.floats(width=32, allow_nan=False),
    "double": st.floats(allow_nan=False),
}
