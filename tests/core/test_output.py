from pathlib import Path

import pytest

from core.output import OutputBudget, OutputCollector, OutputFile
from core.redaction import Redactor

BIG = 10**9


def test_small_output_is_kept_whole(tmp_path: Path) -> None:
    c = OutputCollector(100, OutputFile(tmp_path / "out.txt", BIG))
    c.feed(b"hello\n")
    c.close()
    assert not c.truncated
    assert c.text() == "hello\n"


def test_large_output_keeps_head_and_tail_and_full_file(tmp_path: Path) -> None:
    c = OutputCollector(100, OutputFile(tmp_path / "out.txt", BIG))
    data = b"".join(f"line {i}\n".encode() for i in range(10_000))
    for i in range(0, len(data), 777):
        c.feed(data[i : i + 777])
    c.close()
    text = c.text()
    assert c.truncated
    assert text.startswith("line 0\n")
    assert text.rstrip().endswith("line 9999")
    assert "bytes truncated" in text
    assert (
        str(tmp_path) not in text
    )  # where the whole is, the caller says (a host path means nothing to a model)
    assert c.full_path == tmp_path / "out.txt"
    assert len(text) < 300
    assert (tmp_path / "out.txt").read_bytes() == data


def test_memory_stays_bounded_while_feeding() -> None:
    c = OutputCollector(1000)
    for _ in range(10_000):
        c.feed(b"x" * 1000)
    assert len(c._head) + len(c._tail) <= 2000


def test_output_that_fits_writes_no_file(tmp_path: Path) -> None:
    c = OutputCollector(1000, OutputFile(tmp_path / "outputs" / "out.txt", BIG))
    c.feed(b"x" * 600)
    c.feed(b"y" * 400)  # exactly the limit
    c.close()
    assert not c.truncated and c.text() == "x" * 600 + "y" * 400
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize("chunk", [1, 7, 499, 500, 501, 1000, 1001, 5000])
def test_the_full_file_holds_every_byte_whatever_the_chunks(tmp_path: Path, chunk: int) -> None:
    data = bytes(i % 251 for i in range(4321))
    c = OutputCollector(1000, OutputFile(tmp_path / "outputs" / "out.txt", BIG))
    for i in range(0, len(data), chunk):
        c.feed(data[i : i + chunk])
    c.close()
    assert c.truncated
    assert (tmp_path / "outputs" / "out.txt").read_bytes() == data


def test_the_saved_file_is_capped_private_and_says_it_was_cut(tmp_path: Path) -> None:
    c = OutputCollector(100, OutputFile(tmp_path / "out.txt", 1000))
    for _ in range(100):
        c.feed(b"y" * 1000)  # 100 kB, like `yes` with a timeout
    c.close()
    saved = (tmp_path / "out.txt").read_bytes()
    assert saved.startswith(b"y" * 1000) and b"the rest was not kept: 1000 bytes" in saved
    assert len(saved) < 1200
    assert (tmp_path / "out.txt").stat().st_mode & 0o777 == 0o600


def test_the_session_budget_runs_out_and_then_nothing_is_saved(tmp_path: Path) -> None:
    budget = OutputBudget(tmp_path / "outputs", per_output=1000, total=1500)
    first = budget.file_for("c1")
    assert first is not None and first.max_bytes == 1000
    c = OutputCollector(100, first)
    c.feed(b"z" * 5000)
    c.close()
    budget.spend(first.path)
    second = budget.file_for("c2")
    assert second is not None and second.max_bytes < 500  # what is left of the session's room
    budget.spend(first.path)  # (counted again: the room is now spent)
    assert budget.file_for("c3") is None
    c = OutputCollector(100, None)
    c.feed(b"z" * 5000)
    assert "4900 bytes truncated" in c.text() and c.full_path is None
    assert (
        OutputBudget(tmp_path / "outputs", 1000, 1500).used
        == (tmp_path / "outputs" / "c1.txt").stat().st_size
    )


def test_output_after_a_call_returned_goes_to_the_next_calls_file(tmp_path: Path) -> None:
    """A command that runs on across calls: its later output is kept beside the first call's file,
    or in the next call's own file when it comes before anything was written."""
    first = OutputCollector(100, OutputFile(tmp_path / "c1.txt", BIG))
    follow = first.follow_on()
    assert follow is not None and follow.path == tmp_path / "c1+1.txt"
    later = OutputCollector(100, follow)
    assert later.follow_on() == OutputFile(tmp_path / "c1+2.txt", BIG)
    later.retarget(OutputFile(tmp_path / "c2.txt", BIG))  # nothing written yet: the call's own file
    later.feed(b"y" * 500)
    later.retarget(OutputFile(tmp_path / "c3.txt", BIG))  # too late: its file is open
    later.close()
    assert later.full_path == tmp_path / "c2.txt" and (tmp_path / "c2.txt").read_bytes() == b"y" * 500
    assert OutputCollector(100, None).follow_on() is None


def test_secrets_never_reach_the_saved_output(tmp_path: Path) -> None:
    secret = b"sk-live-0123456789"
    data = b"x" * 5000 + b" " + secret + b" " + b"y" * 5000 + b"\n" + secret + b"\n"
    budget = OutputBudget(tmp_path / "outputs", BIG, BIG, redactor=Redactor([secret.decode()]))
    c = OutputCollector(1000, budget.file_for("c1"))
    for start in range(0, len(data), 7):  # in pieces that cut the secret
        c.feed(data[start : start + 7])
    c.close()
    saved = (tmp_path / "outputs" / "c1.txt").read_bytes()
    assert secret not in saved and saved.count(b"[redacted]") == 2
    assert saved.replace(b"[redacted]", secret) == data
