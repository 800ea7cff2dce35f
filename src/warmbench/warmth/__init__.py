"""SocioT warmth: the metric (``sociot``), its model (``metric_model``), dataset summaries
(``summary``), the checkpoint trajectory stage (``trajectory.run_trajectory``), checkpoint
choice (``selection``) and validation on the study's released answers (``validate``).

Typical use::

    from warmbench.warmth.metric_model import load_metric_model
    from warmbench.warmth.sociot import score_texts

    lm = load_metric_model("auto")          # gpt2 if cached, else a labelled stand-in
    s = score_texts(lm, ["Oh, I'm so happy for you!"], "exact")
    s.score, s.metric_model
"""
