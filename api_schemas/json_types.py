"""Field types that validate as JSON Schema reads the field, not as Python would coerce.

FastAPI validates a request body as Python objects, where pydantic's lax mode turns
``"2.5"`` into 2.5 and ``true`` into 1.  JSON Schema (what the OpenAPI document
promises, and what a property-based test checks) rejects both, and accepts ``183.0``
for an integer.  Strict mode would get the last one wrong, so these types refuse
strings and booleans before pydantic's lax coercion and leave the rest to it:

- ``JsonInt``: an integer, or a float with no fractional part (``183.0``);
- ``JsonFloat``: any JSON number;
- ``JsonBool``: ``true`` or ``false`` only.

Bounds go *before* the validator (``Annotated[int, Field(ge=1), A_NUMBER]``): after it,
pydantic writes them into the JSON Schema as ``ge``/``le`` instead of
``minimum``/``maximum`` inside an ``anyOf``, and the OpenAPI document stops stating them.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, StrictBool


def _a_number(value: Any) -> Any:
    if isinstance(value, bool | str | bytes):
        raise ValueError(f"Input should be a JSON number, not {type(value).__name__}")
    return value


A_NUMBER = BeforeValidator(_a_number)
JsonInt = Annotated[int, A_NUMBER]
JsonFloat = Annotated[float, A_NUMBER]
JsonBool = StrictBool
