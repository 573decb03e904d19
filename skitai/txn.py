"""Global and local transaction ids (the seed's "API Transaction ID" chapter).

A request that arrives without ids gets gtxnid `GTID-<process>-C<connection>-R<request>`
and ltxnid 1000. A request that carries `X-Gtxn-Id` keeps it and takes ltxnid
= `X-Ltxn-Id` + 1000, so the first digit counts the call depth. Incoming ids
are kept only when well-formed (bounded length, safe characters); anything
else is replaced as if absent, so no client text reaches the logs raw.
"""

from __future__ import annotations

import re
import secrets

from skitai.protocols.events import Request

PROCESS_TAG = secrets.token_hex(3).upper()
_GTXNID = re.compile(rb"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_LTXNID = re.compile(rb"[0-9]{1,15}")
ROOT_LTXNID = 1000


def assign(request: Request) -> tuple[str, int]:
    """(gtxnid, ltxnid) for a request."""
    incoming = request.header(b"x-gtxn-id")
    if incoming is not None and _GTXNID.fullmatch(incoming):
        local = request.header(b"x-ltxn-id")
        parent = int(local) if local is not None and _LTXNID.fullmatch(local) else 0
        return incoming.decode("ascii"), parent + ROOT_LTXNID
    gtxnid = f"GTID-{PROCESS_TAG}-C{request.connection_number}-R{request.request_number}"
    return gtxnid, ROOT_LTXNID
