"""The one JSON Lines reader: same tolerance and same one-line errors for every input file."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from warmbench.cli import app
from warmbench.errors import InputError
from warmbench.jsonl import read_jsonl


def test_reads_objects_with_line_numbers_skipping_blanks_and_a_bom(tmp_path):
    p = tmp_path / "a.jsonl"
    p.write_bytes(b'\xef\xbb\xbf{"a": 1}\n\n   \n{"b": "\xc3\xa9"}\n')
    assert list(read_jsonl(p)) == [(1, {"a": 1}), (4, {"b": "é"})]


@pytest.mark.parametrize(("data", "match"), [
    (b'{"a": 1}\n{"b": "caf\xe9"}\n', r"a\.jsonl:line 2: not UTF-8 text \(byte 0xe9 at column 11\)"),
    (b'{"a": 1}\n{oops\n', r"a\.jsonl:line 2: not valid JSON"),
    (b'[1, 2]\n', r"a\.jsonl:line 1: expected a JSON object"),
])
def test_bad_lines_are_one_line_errors(tmp_path, data, match):
    p = tmp_path / "a.jsonl"
    p.write_bytes(data)
    with pytest.raises(InputError, match=match) as e:
        list(read_jsonl(p))
    assert "\n" not in str(e.value)


def test_generate_input_that_is_not_utf8_is_one_line(tmp_path):
    inp = tmp_path / "in.jsonl"
    inp.write_bytes(b'{"prompt": "ok"}\n{"prompt": "Gr\xfc\xdfe"}\n')
    r = CliRunner().invoke(app, ["generate", "-m", "scripted:echo", "-i", str(inp),
                                 "--run-dir", str(tmp_path / "run")])
    assert isinstance(r.exception, InputError)
    assert "in.jsonl:line 2: not UTF-8 text" in str(r.exception)
    assert not (tmp_path / "run" / "store.sqlite").exists()  # nothing half-written
