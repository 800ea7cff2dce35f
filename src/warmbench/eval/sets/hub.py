"""Loading an eval set from the Hugging Face hub (used when online; never in tests).

``hub`` strings: ``ID``, ``ID:CONFIG``, ``ID@SPLIT`` or ``ID:CONFIG@SPLIT``, e.g.
``cais/mmlu:all@test``, ``openai/gsm8k:main@test``, ``GBaker/MedQA-USMLE-4-options@test``,
``walledai/AdvBench@train``, ``truthfulqa/truthful_qa:generation@validation``.
A third path segment names a data file inside the repository:
``meg-tong/sycophancy-eval/answer.jsonl`` (read with ``data_files``, split ``train``).
The ids the study's sets live under get their config/split/file filled in (``HUB_DEFAULTS``).
Rows go through the same row mappers as local files.
"""

from __future__ import annotations

from collections.abc import Iterator

from ...errors import MissingExtraError, WarmbenchError
from ._io import Row

DEFAULT_SPLIT = "test"
# repo -> (config, split, data file) used when the hub string leaves them out.
HUB_DEFAULTS: dict[str, tuple[str | None, str, str | None]] = {
    "meg-tong/sycophancy-eval": (None, "train", "answer.jsonl"),
    "cais/mask": ("disinformation", "test", None),
    "cais/mmlu": ("all", "test", None),
    "openai/gsm8k": ("main", "test", None),
    "gsm8k": ("main", "test", None),
    "walledai/advbench": (None, "train", None),
    "gbaker/medqa-usmle-4-options": (None, "test", None),
    "truthfulqa/truthful_qa": ("generation", "validation", None),
}


def parse_hub(hub: str) -> tuple[str, str | None, str, str | None]:
    """-> (repo, config, split, data file)."""
    rest, _, split = hub.partition("@")
    repo, _, config = rest.partition(":")
    if not repo:
        raise WarmbenchError(f"hub id {hub!r}: expected ID[:CONFIG][@SPLIT]")
    parts = repo.split("/")
    data_file = "/".join(parts[2:]) or None
    repo = "/".join(parts[:2])
    d_config, d_split, d_file = HUB_DEFAULTS.get(repo.lower(), (None, DEFAULT_SPLIT, None))
    data_file = data_file or d_file
    if data_file and not split:
        split = "train"   # a bare data file loads as the 'train' split
    return repo, config or d_config, split or d_split, data_file


def hub_rows(hub: str) -> Iterator[Row]:
    try:
        import datasets
    except ImportError:
        raise MissingExtraError("datasets", "ml", "loading eval sets from the hub") from None
    repo, config, split, data_file = parse_hub(hub)
    try:
        if data_file:
            ds = datasets.load_dataset(repo, data_files=data_file, split=split)
        else:
            ds = datasets.load_dataset(repo, config, split=split)
    except Exception as e:   # network, auth, unknown id: one clear line for the user
        raise WarmbenchError(f"hub {hub!r}: could not load ({type(e).__name__}: {e})") from None
    for i, row in enumerate(ds, 1):
        yield i, dict(row)
