"""Test helpers shipped with the package: tiny random-weight models built from config.

They need no download and load in well under a second, so stage tests can exercise the
real transformers / PEFT / TRL code paths. Their outputs are noise, by design.
"""

from __future__ import annotations

from pathlib import Path

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>"]


def build_tiny_tokenizer():
    """A byte-level tokenizer with no merges: every UTF-8 byte is a token. Deterministic."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {tok: i for i, tok in enumerate(SPECIALS)}
    for ch in sorted(alphabet):
        vocab[ch] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>",
        pad_token="<pad>", unk_token="<|endoftext|>",
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_model(path: str | Path, arch: str = "llama", seed: int = 0) -> Path:
    """Write a tiny random model + tokenizer to ``path`` (idempotent) and return the path.

    ``arch``: 'llama' (chat model for generation / LoRA tests) or 'gpt2' (warmth metric tests).
    """
    import torch
    from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig

    path = Path(path)
    if (path / "config.json").exists():
        return path
    tok = build_tiny_tokenizer()
    n_vocab = len(tok)
    if arch == "llama":
        cfg = LlamaConfig(vocab_size=n_vocab, hidden_size=32, intermediate_size=64,
                          num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                          max_position_embeddings=2048, bos_token_id=tok.bos_token_id,
                          eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                          tie_word_embeddings=True)
    elif arch == "gpt2":
        cfg = GPT2Config(vocab_size=n_vocab, n_embd=32, n_layer=2, n_head=4, n_positions=1024,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    else:
        raise ValueError(f"unknown tiny arch {arch!r}")
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(cfg)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path
