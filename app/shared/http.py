"""The HTTP edge of every context: request text types the database can store, shared headers."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from app.shared.domain import unstorable_character

_LINE_PATTERN = "^[^\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029]*$"
_TEXT_PATTERN = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*$"


def _refuse(char: str, what: str) -> PydanticCustomError:
    return PydanticCustomError(
        "control_character",
        "contains U+{code}, a control character; {what}",
        {"code": f"{ord(char):04X}", "what": what},
    )


def check_line(value: str) -> str:
    if (char := unstorable_character(value)) is not None:
        raise _refuse(char, "use one line of printable text")
    return value


def check_text(value: str) -> str:
    if (char := unstorable_character(value, multiline=True)) is not None:
        raise _refuse(char, "only tabs and line breaks are allowed")
    return value


SafeLine = Annotated[
    str, AfterValidator(check_line), Field(json_schema_extra={"pattern": _LINE_PATTERN})
]
"""One line of printable text: no NUL, surrogate, control character or line separator."""

SafeText = Annotated[
    str, AfterValidator(check_text), Field(json_schema_extra={"pattern": _TEXT_PATTERN})
]
"""Printable text that may hold tabs and line breaks (descriptions)."""


def _whole(value: object) -> object:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


WHOLE = BeforeValidator(_whole)
"""For `Annotated[int, Field(...bounds), WHOLE]`: an integer also when JSON writes it 8877.0, as
JSON Schema's integer allows (strict models refuse floats otherwise). After the bounds, so the
schema keeps them."""


def example(body: dict[str, Any]) -> ConfigDict:
    """A request model's `model_config`: the body /docs fills in, one that works as it is."""
    return ConfigDict(json_schema_extra={"examples": [body]})


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback name and the exact name as RFC 5987 `filename*`."""
    fallback = "".join(
        char if " " <= char <= "~" and char not in '"\\' else "_" for char in filename
    )
    exact = quote(filename.encode("utf-8", "replace"), safe="")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{exact}"
