"""The one token-budget batcher shared by hf generation and SocioT scoring."""

from __future__ import annotations

from warmbench.batching import longest_first, token_batches


def test_groups_stay_within_budget_and_count_and_keep_order():
    widths = [10, 50, 20, 50, 5, 30]
    order = longest_first(widths)
    assert order == [1, 3, 5, 2, 0, 4]  # stable for equal widths
    groups = token_batches(order, widths, budget=100)
    assert groups == [[1, 3], [5, 2, 0], [4]]
    assert [i for g in groups for i in g] == order
    for g in groups:
        assert widths[g[0]] * len(g) <= 100
    assert token_batches(order, widths, budget=10_000, max_count=4) == [[1, 3, 5, 2], [0, 4]]


def test_an_item_wider_than_the_budget_is_batched_alone():
    assert token_batches([0, 1], [500, 10], budget=100) == [[0], [1]]
    assert token_batches([], [], budget=100) == []
