"""Error replies: which protocol code an exception gets, and the `/bridge/error` message itself.

A user's mistake (a bad parameter, a malformed clip, an input the tool cannot take) is answered
with its own code and a message that says what to fix; only a bug is `internal`.
"""
from __future__ import annotations

from bridge import protocol as P
from bridge.clip import ClipError
from bridge.params import ParamError
from bridge.tools import ToolError

MAX_MESSAGE_BYTES = 600


class RequestError(Exception):
    """An error reply: `/bridge/error <id> <code> <message>`.

    `reply_id` replaces the request's id in the reply where that id belongs to another request
    (a refused duplicate id is answered with "", so its client never sees two final replies for
    the request still running)."""

    def __init__(self, code: str, message: str, reply_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reply_id = reply_id


def error_code(exc: BaseException) -> str:
    """The protocol code for an exception raised by a tool or while checking a request."""
    if isinstance(exc, (ToolError, RequestError)):
        return exc.code
    if isinstance(exc, ParamError):
        return "bad_param"
    if isinstance(exc, ClipError):
        return "bad_clip"
    if isinstance(exc, P.ProtocolError):
        return "bad_request"
    return "internal"


def error_reply(rid: str, code: str, text: str) -> bytes:
    return P.message(P.ERROR, rid, code, P.truncate(text, MAX_MESSAGE_BYTES))
