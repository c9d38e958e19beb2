from pathlib import Path

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
