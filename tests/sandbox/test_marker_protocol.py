"""The framing shared by both persistent shells, and Docker's stream demultiplexing (no engine)."""

from __future__ import annotations

import struct

import pytest

from sandbox.docker_exec import StreamDemuxer
from sandbox.marker_protocol import MarkerReader, ShellEndedError, shell_quote


def chunked_receiver(chunks: list[bytes]) -> MarkerReader:
    pending = list(chunks)

    async def receive() -> bytes:
        return pending.pop(0) if pending else b""

    return MarkerReader(receive)


@pytest.mark.parametrize("split", [1, 2, 5, 7, 1000])
async def test_marker_found_across_any_chunking(split: int) -> None:
    stream = b"out\nput\n__sidehand_abc 0\nlate\n__sidehand_def 17\n"
    reader = chunked_receiver([stream[i : i + split] for i in range(0, len(stream), split)])
    got = bytearray()
    assert await reader.read_until("__sidehand_abc", got.extend) == "0"
    assert bytes(got) == b"out\nput"  # the newline before the marker is the protocol's, not output
    late = bytearray()
    assert await reader.read_until("__sidehand_def", late.extend) == "17"
    assert bytes(late) == b"late"


async def test_output_that_mentions_a_marker_prefix_is_not_a_marker() -> None:
    reader = chunked_receiver([b"__sidehand_abc 1\nx\n__sidehand_ab 2\n\n__sidehand_abc 3\n"])
    got = bytearray()
    assert await reader.read_until("__sidehand_abc", got.extend) == "3"
    assert bytes(got) == b"__sidehand_abc 1\nx\n__sidehand_ab 2\n"


async def test_output_before_the_end_of_the_stream_is_kept() -> None:
    reader = chunked_receiver([b"partial output\n__sideh"])
    got = bytearray()
    with pytest.raises(ShellEndedError):
        await reader.read_until("__sidehand_abc", got.extend)
    assert bytes(got) == b"partial output\n__sideh"


def test_shell_quote_round_trips_through_sh() -> None:
    assert shell_quote("it's") == "'it'\\''s'"
    assert shell_quote("") == "''"


def frame(stream: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(payload)) + payload


@pytest.mark.parametrize("split", [1, 3, 8, 9, 64])
def test_demuxer_merges_stdout_and_stderr_in_order(split: int) -> None:
    raw = frame(1, b"hello ") + frame(2, b"err ") + frame(1, b"") + frame(1, b"world" * 20)
    demuxer = StreamDemuxer()
    out = b"".join(demuxer.feed(raw[i : i + split]) for i in range(0, len(raw), split))
    assert out == b"hello err " + b"world" * 20
