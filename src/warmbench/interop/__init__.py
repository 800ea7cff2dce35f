"""Work with other evaluation tools: UK AISI Inspect and EleutherAI lm-evaluation-harness.

* ``logs``: read Inspect eval logs and lm-eval sample files into per-sample outcomes;
* ``compare``: pair them and run warmbench's paired statistics and report on them;
* ``task``: the study's grid as an Inspect task (``warmbench/persona_reliability``);
* ``export``: a warmbench run as Inspect eval logs.

Inspect and lm-eval are optional (extras ``inspect``, ``lmeval``): nothing here imports them at
module level except ``task``, which only Inspect itself (entry point) or a caller loads.
"""
