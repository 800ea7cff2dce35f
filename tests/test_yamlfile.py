"""The one reader of user YAML files: the same one-line errors for configs, statements files,
query-type rules and judge rubrics."""

from __future__ import annotations

import pytest

from warmbench.errors import WarmbenchError
from warmbench.yamlfile import read_yaml_mapping


@pytest.mark.parametrize(("content", "message"), [
    (b"a: [1, 2\n", r"x\.yaml: not valid YAML: .* \(line 2, column 1\)$"),
    (b"- a\n- b\n", r"x\.yaml: top level must be a mapping, got list"),
    (b"a: caf\xe9\n", r"x\.yaml: not UTF-8 text \(byte 0xe9 at offset 6\)"),
])
def test_bad_files_are_one_line_errors(tmp_path, content, message):
    f = tmp_path / "x.yaml"
    f.write_bytes(content)
    with pytest.raises(WarmbenchError, match=message) as e:
        read_yaml_mapping(f, "thing file")
    assert "\n" not in str(e.value).strip()


def test_missing_file_and_empty_file(tmp_path):
    with pytest.raises(WarmbenchError, match=r"^thing file not found: .*nope\.yaml$"):
        read_yaml_mapping(tmp_path / "nope.yaml", "thing file")
    (tmp_path / "e.yaml").write_text("", encoding="utf-8")
    assert read_yaml_mapping(tmp_path / "e.yaml", "thing file") == {}
    (tmp_path / "m.yaml").write_text("a: 1\n", encoding="utf-8")
    assert read_yaml_mapping(tmp_path / "m.yaml", "thing file") == {"a": 1}


def test_every_user_yaml_file_goes_through_it(tmp_path):
    """A list at the top level gets the same error from each loader of user YAML."""
    from warmbench.config import load_config
    from warmbench.curate.labels import load_rules
    from warmbench.eval.grid.stimuli import load_stimuli
    from warmbench.eval.rubric import load_rubric

    f = tmp_path / "list.yaml"
    f.write_text("- a\n", encoding="utf-8")
    for load in (load_config, load_rules, load_stimuli, load_rubric):
        with pytest.raises(WarmbenchError, match=r"list\.yaml: top level must be a mapping, got list"):
            load(str(f))
