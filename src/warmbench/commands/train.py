"""``warmbench train``: LoRA fine-tuning on the study's schedule, or OpenAI API fine-tuning."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import WarmbenchError
from ..layout import RunLayout


def _epochs(text: str | None) -> list[float] | None:
    if not text:
        return None
    try:
        return [float(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError:
        raise WarmbenchError(f"--checkpoint-epochs: expected numbers like 0.5,1,2 (got {text!r})") from None


def register(app: typer.Typer) -> None:
    @app.command("train")
    def train(
        config: Path = typer.Argument(None, help="Experiment config (YAML); defaults are the study's."),
        persona: list[str] = typer.Option(None, "--persona", "-p",
                                          help="Persona(s) to train (default: every persona with a rewrite file)."),
        data: Path = typer.Option(None, "--data", help="Train on this chat JSONL ({id, messages}) instead of RUN/rewrite/<persona>.jsonl."),
        base_model: str = typer.Option(None, "--base-model", help="hf: spec of the model to fine-tune, e.g. hf:smollm2-135m."),
        epochs: float = typer.Option(None, "--epochs", help="Training epochs (study: 10)."),
        checkpoint_epochs: str = typer.Option(None, "--checkpoint-epochs",
                                              help="Comma-separated epochs to save, e.g. 0.5,1,2 (study: 0.5,1,1.5,2,4,6,8,10)."),
        limit: int = typer.Option(None, "--limit", help="Train on the first N conversations only."),
        per_device_batch: int = typer.Option(None, "--per-device-batch", help="Micro-batch per device; accumulation makes up the effective batch."),
        packing: bool = typer.Option(None, "--packing/--no-packing", help="Pack conversations into max_length blocks (study: no)."),
        api: str = typer.Option(None, "--api", help="Fine-tune through an API instead of LoRA: 'openai'."),
        run_dir: Path = typer.Option(None, "--run-dir", help="Run directory (overrides the config's run_dir)."),
        progress: bool = typer.Option(None, "--progress/--no-progress", help="Show progress bars (default: on a terminal)."),
        accelerate_config: str = typer.Option(None, "--accelerate-config",
                                              help="Print the path of a shipped accelerate config (multi_gpu, deepspeed_zero3) and exit."),
    ) -> None:
        """Fine-tune each persona (warm, cold, ...) with identical hyper-parameters.

        LoRA (default): r 8, alpha 16, dropout 0.1, lr 1e-5, max length 1024, effective batch 16,
        10 epochs, loss on assistant tokens only; adapters saved at epochs 0.5 1 1.5 2 4 6 8 10 in
        RUN/train/<persona>/checkpoint-epoch-<E>/, each usable as an arm
        `hf:BASE+RUN/train/<persona>/checkpoint-epoch-<E>`. Finished personas are skipped and an
        interrupted one resumes. Multi-GPU: `accelerate launch -m warmbench.cli train CONFIG`.

        --api openai: uploads the JSONL, creates a fine-tuning job (epochs, learning-rate
        multiplier per persona: study 0.25 warm, 0.1 cold), polls it and records the job and its
        checkpoint models (openai: specs) in RUN/train/<persona>/api_job.json.
        """
        if accelerate_config:
            from ..train.paths import accelerate_config as config_path

            typer.echo(str(config_path(accelerate_config)))
            return
        from ..config import load_config, parse_config
        from ..progress import Progress
        from ..store import RunStore
        from ..train import run_train

        overrides = {"run_dir": str(run_dir)} if run_dir else None
        cfg = load_config(config, overrides) if config else parse_config(overrides or {})
        given = {"base_model": base_model, "epochs": epochs, "limit": limit,
                 "checkpoint_epochs": _epochs(checkpoint_epochs),
                 "per_device_batch_size": per_device_batch, "packing": packing,
                 "personas": list(persona or []) or None,
                 "data": str(data) if data is not None else None, "method": api}
        if api is not None and api != "openai":
            raise WarmbenchError(f"--api: unknown provider {api!r} (known: openai)")
        cfg = cfg.with_overrides({f"train.{k}": v for k, v in given.items() if v is not None},
                                 str(config or "<defaults>"))
        store = RunStore(cfg.run_dir)
        with Progress(progress) as prog:
            summary = run_train(cfg, store, prog)
        for p, status in summary["personas"].items():
            typer.echo(f"{p}: {status}; {summary['checkpoints'][p]} checkpoint(s) in "
                       f"{RunLayout(cfg.run_dir).train_persona(p)}")
