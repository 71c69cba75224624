"""The score columns each scoring step writes, with their `datasets` types.

Types are declared up front (not inferred from the first batch): a batch whose rows all failed has
only None scores, from which `datasets` could not infer a type.
"""

from __future__ import annotations

from typing import Any

# A column's type: a value type name, or a one-element list for a list of that type.
ColumnSpec = Any

FLOAT, BOOL, STRING, INT = "float64", "bool", "string", "int64"
CDE_COLUMNS: dict[str, ColumnSpec] = {
    "rap_image_correct": [BOOL], "rap_text_correct": [BOOL],
    "rap_image_formatted": [BOOL], "rap_text_formatted": [BOOL],
    "rap_acc_image": FLOAT, "rap_acc_text": FLOAT, "rap_cde": FLOAT, "rap_difficulty": FLOAT,
}
RESPONSE_COLUMNS: dict[str, ColumnSpec] = {"rap_responses_image": [STRING], "rap_responses_text": [STRING]}
ACE_COLUMNS: dict[str, ColumnSpec] = {"rap_ace": FLOAT, "rap_ace_flag": BOOL, "rap_ace_column": INT}
LOGIT_COLUMNS: dict[str, ColumnSpec] = {"rap_logit_cde": FLOAT}
ERROR_COLUMNS: dict[str, ColumnSpec] = {"rap_error": STRING}


def feature(spec: ColumnSpec):
    """The `datasets` feature of a column spec: `Value(type)`, or `List(Value(type))`."""
    from datasets import List, Value

    return List(Value(spec[0])) if isinstance(spec, list) else Value(spec)
