"""hoginpaint.config: the one dataclass → argparse helper behind training, evaluation and the CLI."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pytest

from hoginpaint import config


@dataclass
class Example:
    path: str = config.option(help="required: no default")
    batch_size: int = config.option(8, "images per step")
    mode: Literal["a", "b"] = config.option("a", "one of two")
    sizes: list[int] = config.option([1, 2], "several values")
    streaming: bool = config.option(True, "a switch")
    limit: float | None = config.option(None, "optional number")

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"--batch_size must be at least 1, got {self.batch_size}")


def test_fields_become_typed_flags_with_their_defaults():
    parsed = config.parse_config(Example, ["--path", "x"])
    assert parsed == Example(path="x", batch_size=8, mode="a", sizes=[1, 2], streaming=True, limit=None)
    parsed = config.parse_config(Example, ["--path", "x", "--batch_size", "3", "--mode", "b", "--sizes", "4", "5",
                                           "--no-streaming", "--limit", "0.5"])
    assert parsed == Example(path="x", batch_size=3, mode="b", sizes=[4, 5], streaming=False, limit=0.5)


def test_the_kebab_case_spelling_is_a_hidden_alias():
    parsed = config.parse_config(Example, ["--path", "x", "--batch-size", "5"])
    assert parsed.batch_size == 5
    help_text = config.build_parser(Example).format_help()
    assert "--batch_size" in help_text and "--batch-size" not in help_text
    assert "(default: 8)" in help_text


def test_bad_values_exit_with_the_dataclass_message(capsys):
    with pytest.raises(SystemExit) as exit_info:
        config.parse_config(Example, ["--path", "x", "--batch_size", "0"])
    assert exit_info.value.code == 2
    assert "--batch_size must be at least 1, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        config.parse_config(Example, [])  # --path is required
    assert "--path" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        config.parse_config(Example, ["--path", "x", "--mode", "c"])
    assert "invalid choice: 'c'" in capsys.readouterr().err
