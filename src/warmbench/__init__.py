"""warmbench: what a persona costs a language model in reliability."""

__version__ = "0.1.0"
