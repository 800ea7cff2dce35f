"""Only the targeted library deprecation is silenced."""

from __future__ import annotations

import warnings

from warmbench.quiet import silence_peft_deprecations


def test_only_the_peft_deprecation_is_silenced():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        silence_peft_deprecations()
        warnings.warn("`is_gradient_checkpointing` is deprecated and will be removed in v6.", FutureWarning, stacklevel=1)
        warnings.warn("something else is deprecated", FutureWarning, stacklevel=1)
        warnings.warn("`is_gradient_checkpointing` is deprecated", UserWarning, stacklevel=1)  # other category
    assert [str(w.message) for w in seen] == ["something else is deprecated",
                                               "`is_gradient_checkpointing` is deprecated"]
