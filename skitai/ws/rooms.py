"""Rooms: sessions that hear one another, for handlers on the event loop.

    rooms = skitai.Rooms()

    @skitai.websocket
    async def chat(ws):
        with rooms.join(ws.environ["QUERY_STRING"], ws) as room:
            async for message in ws:
                room.broadcast(f"{ws.id}: {message}")

A room exists while it has members: `Rooms.join` makes it for the first
and forgets it after the last has left, whoever came first. Sending never
waits: each member has its own bounded queue, and a member too slow to
empty it is closed with 1008 rather than slowing the room. All of it runs
on the event loop; the WEBSOCKET_MULTICAST design builds on it for apps in
threads.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from skitai.protocols.websocket import Data


class Member(Protocol):
    """What a room needs of a session (`skitai.WebSocket` is one)."""

    @property
    def id(self) -> int: ...

    def send_nowait(self, message: Data) -> bool: ...


class Room:
    """The members of one room, by id."""

    __slots__ = ("_members", "name")

    def __init__(self, name: str = "") -> None:
        self.name = name
        self._members: dict[int, Member] = {}

    def add(self, member: Member) -> None:
        self._members[member.id] = member

    def discard(self, member: Member) -> None:
        if self._members.get(member.id) is member:
            del self._members[member.id]

    def broadcast(self, message: Data, *, exclude: Member | None = None) -> int:
        """Queue `message` to every member (but `exclude`); how many took it."""
        _check(message)
        sent = 0
        for member in list(self._members.values()):
            if member is not exclude and member.send_nowait(message):
                sent += 1
        return sent

    def send_to(self, member_id: int, message: Data) -> bool:
        """Queue `message` to one member; False if there is no such member or it is closed."""
        _check(message)
        member = self._members.get(member_id)
        return member is not None and member.send_nowait(message)

    @property
    def ids(self) -> list[int]:
        return list(self._members)

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, member_id: object) -> bool:
        return member_id in self._members

    def __iter__(self) -> Iterator[Member]:
        return iter(list(self._members.values()))

    def __repr__(self) -> str:
        return f"<Room {self.name!r} {len(self._members)} members>"


class Rooms:
    """Rooms by name, each kept exactly as long as it has members."""

    __slots__ = ("_rooms",)

    def __init__(self) -> None:
        self._rooms: dict[str, Room] = {}

    @contextmanager
    def join(self, name: str, member: Member) -> Iterator[Room]:
        """Be a member of room `name` (made if needed) for the `with` block."""
        room = self._rooms.get(name)
        if room is None:
            room = self._rooms[name] = Room(name)
        room.add(member)
        try:
            yield room
        finally:
            room.discard(member)
            if not room and self._rooms.get(name) is room:
                del self._rooms[name]

    def get(self, name: str) -> Room | None:
        return self._rooms.get(name)

    def __len__(self) -> int:
        return len(self._rooms)

    def __contains__(self, name: object) -> bool:
        return name in self._rooms

    def __iter__(self) -> Iterator[Room]:
        return iter(list(self._rooms.values()))


def _check(message: object) -> None:
    if not isinstance(message, str | bytes):
        raise TypeError(f"a WebSocket message is str or bytes, not {type(message).__name__}")
