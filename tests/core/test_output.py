from pathlib import Path

import pytest

from core.output import OutputCollector


def test_small_output_is_kept_whole(tmp_path: Path) -> None:
    c = OutputCollector(100, tmp_path / "out.txt")
    c.feed(b"hello\n")
    c.close()
    assert not c.truncated
    assert c.text() == "hello\n"


def test_large_output_keeps_head_and_tail_and_full_file(tmp_path: Path) -> None:
    c = OutputCollector(100, tmp_path / "out.txt")
    data = b"".join(f"line {i}\n".encode() for i in range(10_000))
    for i in range(0, len(data), 777):
        c.feed(data[i : i + 777])
    c.close()
    text = c.text()
    assert c.truncated
    assert text.startswith("line 0\n")
    assert text.rstrip().endswith("line 9999")
    assert "bytes truncated" in text and str(tmp_path / "out.txt") in text
    assert len(text) < 300
    assert (tmp_path / "out.txt").read_bytes() == data


def test_memory_stays_bounded_while_feeding() -> None:
    c = OutputCollector(1000)
    for _ in range(10_000):
        c.feed(b"x" * 1000)
    assert len(c._head) + len(c._tail) <= 2000


def test_output_that_fits_writes_no_file(tmp_path: Path) -> None:
    c = OutputCollector(1000, tmp_path / "outputs" / "out.txt")
    c.feed(b"x" * 600)
    c.feed(b"y" * 400)  # exactly the limit
    c.close()
    assert not c.truncated and c.text() == "x" * 600 + "y" * 400
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize("chunk", [1, 7, 499, 500, 501, 1000, 1001, 5000])
def test_the_full_file_holds_every_byte_whatever_the_chunks(tmp_path: Path, chunk: int) -> None:
    data = bytes(i % 251 for i in range(4321))
    c = OutputCollector(1000, tmp_path / "outputs" / "out.txt")
    for i in range(0, len(data), chunk):
        c.feed(data[i : i + chunk])
    c.close()
    assert c.truncated
    assert (tmp_path / "outputs" / "out.txt").read_bytes() == data
