"""What the client makes of the server's bytes: a list of answers, each checked.

The bytes are decoded with a client-role h11, so a response that h11 would
not accept fails the fuzzing as surely as a wrong status.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import h11

from fuzz.harness import HANDLER_STATUSES

DRIVER_STATUSES = frozenset({400, 413, 414, 431, 501, 505})  # the driver's answers to bad input


@dataclass(frozen=True)
class Answer:
    """One response as the client decoded it."""

    status: int
    interim: tuple[int, ...]  # 1xx statuses before it
    echo: bytes | None  # the test handler's digest; None for the driver's own answers
    closes: bool  # Connection: close
    # Not compared: h11 words some errors after the bytes it had when it
    # gave up, which depends on the split; the status does not.
    body: bytes = field(compare=False)


def decode(output: bytes) -> list[Answer]:
    """The responses in `output`, each checked by a client-role h11; raises if malformed."""
    answers = []
    while output:
        answer, output = _decode_one(output)
        answers.append(answer)
    return answers


def _method_answered(output: bytes) -> bytes:
    """HEAD if the next final response answers one, else GET: h11 frames a body by the method.

    The test handler names the method it answered; the driver's own error
    answer to a HEAD request is the last thing sent, and ends with its head.
    """
    at = 0
    while output.startswith(b"HTTP/1.1 1", at):  # interim responses have no body
        at = output.find(b"\r\n\r\n", at) + 4
    end = output.find(b"\r\n\r\n", at)
    head = output[at:end]
    if b"\r\nX-Echo: " in head:
        return b"HEAD" if b"\r\nX-Echo: HEAD " in head else b"GET"
    return b"HEAD" if end + 4 == len(output) else b"GET"


def _decode_one(output: bytes) -> tuple[Answer, bytes]:
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method=_method_answered(output), target="/", headers=[("Host", "x")]))
    client.send(h11.EndOfMessage())
    client.receive_data(output)
    client.receive_data(b"")  # everything has arrived: a cut-short response is an error
    interim = []
    head = None
    body = bytearray()
    while True:
        event = client.next_event()
        if isinstance(event, h11.InformationalResponse):
            interim.append(event.status_code)
        elif isinstance(event, h11.Response):
            head = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            break
        else:
            raise AssertionError(f"response cut short: {output[:200]!r}")
    assert head is not None
    fields = head.headers
    _assert_once(fields, b"date")
    _assert_once(fields, b"server")
    echoed = [value for name, value in fields if name == b"x-echo"]
    closes = any(name == b"connection" and value.lower() == b"close" for name, value in fields)
    answer = Answer(head.status_code, tuple(interim), echoed[0] if echoed else None, closes,
                    bytes(body))
    return answer, client.trailing_data[0]


def _assert_once(fields: Sequence[tuple[bytes, bytes]], name: bytes) -> None:
    count = sum(1 for key, _ in fields if key == name)
    assert count == 1, f"{name.decode()} {count} times in a response"


def check_answers(answers: Sequence[Answer]) -> None:
    """Each answer is the test handler's, or one error of the driver's that ends the connection."""
    for number, answer in enumerate(answers, 1):
        assert set(answer.interim) <= {100}, answer
        if answer.echo is not None:
            assert answer.status in HANDLER_STATUSES, answer
            body = b"" if answer.echo.startswith(b"HEAD ") else answer.echo
            assert answer.body == body, f"body does not match its head: {answer}"
            continue
        assert answer.status in DRIVER_STATUSES, answer
        assert answer.closes, f"error answer without Connection: close: {answer}"
        assert number == len(answers), f"answers after an error: {answers[number:]}"
