"""The backend registry: typed options checked at config load, no catch-all, one seeding rule."""

from __future__ import annotations

import inspect

import pytest

from warmbench.backends import get_backend
from warmbench.backends.base import request_seed
from warmbench.backends.registry import BACKENDS, BackendOptions, backend_class, parse_options
from warmbench.backends.spec import KNOWN_BACKENDS
from warmbench.config import parse_config
from warmbench.errors import WarmbenchError
from warmbench.records import ChatRequest, SamplingParams


def test_a_misspelt_backend_option_fails_at_config_load():
    with pytest.raises(WarmbenchError, match=r"unknown option 'batchsize'.*batch_size"):
        parse_config({"backend_options": {"hf": {"batchsize": 32}}})
    with pytest.raises(WarmbenchError, match=r"openai backend: unknown option 'time_out'"):
        parse_config({"backend_options": {"openai": {"time_out": 120}}})
    with pytest.raises(WarmbenchError, match=r"option 'batch_size'"):
        parse_config({"backend_options": {"hf": {"batch_size": 0}}})
    with pytest.raises(WarmbenchError, match=r"unknown backend 'hff'"):
        parse_config({"backend_options": {"hff": {}}})
    cfg = parse_config({"backend_options": {"hf": {"batch_size": 4},
                                            "vllm": {"tensor_parallel_size": 2}}})
    assert cfg.backend_options["hf"] == {"batch_size": 4}


def test_options_reach_the_backend_explicitly_and_overrides_win(tiny_llama):
    opts = {"hf": {"batch_size": 3}, "openai": {"timeout": 5}}
    assert get_backend(f"hf:{tiny_llama}", opts).batch_size == 3
    assert get_backend(f"hf:{tiny_llama}", opts, batch_size=5).batch_size == 5
    assert get_backend(f"hf:{tiny_llama}").batch_size == 16  # no hidden global defaults
    with pytest.raises(WarmbenchError, match="unknown option 'batchsize'"):
        get_backend(f"hf:{tiny_llama}", batchsize=2)


def test_every_backend_declares_options_and_takes_no_catch_all():
    assert tuple(BACKENDS) == KNOWN_BACKENDS
    for prefix in BACKENDS:
        cls = backend_class(prefix)
        assert issubclass(cls.Options, BackendOptions), prefix
        params = inspect.signature(cls.__init__).parameters.values()
        assert not [p for p in params if p.kind is inspect.Parameter.VAR_KEYWORD], prefix
        assert parse_options(prefix, {}) == cls.Options()


def test_one_seeding_rule_depends_on_the_request_not_its_place():
    a, b = ChatRequest.from_user("a"), ChatRequest.from_user("b")
    p = SamplingParams(temperature=1.0, seed=7)
    assert request_seed(a, p, 0) == request_seed(ChatRequest.from_user("a", tag="other"), p, 0)
    assert len({request_seed(a, p, 0), request_seed(b, p, 0), request_seed(a, p, 1),
                request_seed(a, SamplingParams(temperature=1.0, seed=8), 0)}) == 4
    assert 0 <= request_seed(a, p, 0) < 2**63
