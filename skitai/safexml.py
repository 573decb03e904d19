"""XML-RPC documents parsed without the attacks XML allows.

`xmlrpc.client.loads` hands the text to expat with its defaults: a
document may declare entities (the "billion laughs" expansion), point at
external ones, and nest without limit. XML-RPC needs none of that, so
`loads` here refuses any document type declaration (no DTD, no entity can
be declared) and any element nested deeper than `MAX_DEPTH`, and stops at
the first refusal instead of building anything.
"""

from __future__ import annotations

import xmlrpc.client
from typing import Any
from xml.parsers import expat

MAX_DEPTH = 100  # elements; a value nests 3 deep per array or struct level


class UnsafeXML(ValueError):
    """The document uses a feature XML-RPC does not need (a DTD, an entity) or nests too deep."""


def loads(data: bytes | str, *, max_depth: int = MAX_DEPTH) -> tuple[tuple[Any, ...], str | None]:
    """(params, method name) of an XML-RPC call or response, like `xmlrpc.client.loads`.

    Raises `UnsafeXML`, `expat.ExpatError` for text that is not XML,
    `xmlrpc.client.Fault` for a fault response, and `xmlrpc.client.ResponseError`
    (or `ValueError`) for XML that is not XML-RPC.
    """
    unmarshaller = xmlrpc.client.Unmarshaller(use_datetime=False, use_builtin_types=True)
    # As xmlrpc.client.ExpatParser does: expat hands over str, nothing is left to decode.
    unmarshaller.xml(None, None)  # type: ignore[arg-type]
    parser = expat.ParserCreate("utf-8" if isinstance(data, str) else None, None)
    depth = 0

    def start(tag: str, attrs: dict[str, str]) -> None:
        nonlocal depth
        depth += 1
        if depth > max_depth:
            raise UnsafeXML(f"elements nested deeper than {max_depth}")
        unmarshaller.start(tag, attrs)

    def end(tag: str) -> None:
        nonlocal depth
        depth -= 1
        unmarshaller.end(tag)

    def refuse_doctype(*_: Any) -> None:
        raise UnsafeXML("document type declarations (DTDs) are not allowed")

    def refuse_entity(*_: Any) -> int:
        raise UnsafeXML("entity declarations and references are not allowed")

    parser.buffer_text = True
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = unmarshaller.data
    parser.StartDoctypeDeclHandler = refuse_doctype
    parser.EntityDeclHandler = refuse_entity
    parser.UnparsedEntityDeclHandler = refuse_entity
    parser.ExternalEntityRefHandler = refuse_entity
    parser.Parse(data.encode("utf-8") if isinstance(data, str) else data, True)
    return unmarshaller.close(), unmarshaller.getmethodname()


def dumps_response(value: Any) -> str:
    """An XML-RPC methodResponse carrying `value` (None allowed), or a Fault."""
    if isinstance(value, xmlrpc.client.Fault):
        return xmlrpc.client.dumps(value, methodresponse=True, allow_none=True)
    return xmlrpc.client.dumps((value,), methodresponse=True, allow_none=True)
