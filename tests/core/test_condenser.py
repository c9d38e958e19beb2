from core.condenser import BoundedWindow, estimate_tokens
from core.messages import ChatMessage, ToolCall


def step(i: int) -> list[ChatMessage]:
    call = ToolCall(id=f"c{i}", name="bash", arguments=f'{{"command": "echo {i}"}}')
    return [
        ChatMessage(role="assistant", tool_calls=(call,)),
        ChatMessage(role="tool", tool_call_id=f"c{i}", content="x" * 400),
    ]


def test_small_views_pass_unchanged() -> None:
    view = [ChatMessage(role="user", content="task"), *step(0)]
    assert BoundedWindow(2000).condense(view) == view


def test_window_keeps_first_user_and_newest_within_budget() -> None:
    window = BoundedWindow(2000)
    view: list[ChatMessage] = [ChatMessage(role="user", content="the task")]
    for i in range(100):
        view += step(i)
        out = list(window.condense(view))
        assert sum(estimate_tokens(m) for m in out) <= 2000 + 60  # + the note
        assert out[0].content == "the task"
        assert out[-1] is view[-1]
        if len(out) != len(view):
            assert "earlier messages of this session were dropped" in (out[1].content or "")
            assert out[2].role == "assistant"  # never a tool result without its call
    # the same answer as a window built from scratch on the final view (the running totals are right)
    assert list(BoundedWindow(2000).condense(view)) == out


def test_a_replaced_last_message_is_re_estimated() -> None:
    window = BoundedWindow(2000)
    view = [ChatMessage(role="user", content="task"), ChatMessage(role="assistant", content="a")]
    window.condense(view)
    view[-1] = ChatMessage(role="assistant", content="b" * 40_000)
    out = list(window.condense([*view, ChatMessage(role="user", content="next")]))
    assert all(m.content != "b" * 40_000 for m in out)
