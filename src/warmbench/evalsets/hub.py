"""Loading an eval set from the Hugging Face hub (used when online; never in tests).

``hub`` strings: ``ID``, ``ID:CONFIG``, ``ID@SPLIT`` or ``ID:CONFIG@SPLIT``, e.g.
``cais/mmlu:all@test``, ``openai/gsm8k:main@test``, ``GBaker/MedQA-USMLE-4-options@test``,
``walledai/AdvBench@train``, ``truthfulqa/truthful_qa:generation@validation``.
Rows go through the same row mappers as local files.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..errors import MissingExtraError, WarmbenchError
from ._io import Row

DEFAULT_SPLIT = "test"


def parse_hub(hub: str) -> tuple[str, str | None, str]:
    rest, _, split = hub.partition("@")
    repo, _, config = rest.partition(":")
    if not repo:
        raise WarmbenchError(f"hub id {hub!r}: expected ID[:CONFIG][@SPLIT]")
    return repo, config or None, split or DEFAULT_SPLIT


def hub_rows(hub: str) -> Iterator[Row]:
    try:
        import datasets
    except ImportError:
        raise MissingExtraError("datasets", "ml", "loading eval sets from the hub") from None
    repo, config, split = parse_hub(hub)
    try:
        ds = datasets.load_dataset(repo, config, split=split)
    except Exception as e:   # network, auth, unknown id: one clear line for the user
        raise WarmbenchError(f"hub {hub!r}: could not load ({type(e).__name__}: {e})") from None
    for i, row in enumerate(ds, 1):
        yield i, dict(row)
