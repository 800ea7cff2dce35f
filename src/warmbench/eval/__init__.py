"""Evaluation in one package: the sets (``sets``), the condition grid (``grid``) and the run
(``run``: every arm answers every prompt)."""
