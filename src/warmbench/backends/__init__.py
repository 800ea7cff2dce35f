"""Text-producing backends behind one protocol (see ``base.Backend``)."""

from .base import Backend, ResultCallback, get_backend
from .spec import KNOWN_BACKENDS, ModelSpec, parse_spec

__all__ = ["Backend", "ResultCallback", "get_backend", "KNOWN_BACKENDS", "ModelSpec", "parse_spec"]
