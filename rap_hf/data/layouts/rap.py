"""Canonical RAP rows (`rap_id`, `question`, `answer`, `images`): read as they are, so converting them
again changes nothing."""

from ..canonical import CANONICAL_COLUMNS
from .base import Layout

LAYOUT = Layout("rap", required=CANONICAL_COLUMNS, question="question", images=("images",), choices=(), hints=False)
