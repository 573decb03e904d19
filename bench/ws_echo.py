"""The WebSocket echo the benchmarks serve: mount it beside the WSGI app at "/".

    python -m skitai /=apps:wsgi_app /=bench/ws_echo.py

Handshakes at any path go to this endpoint, every other request to the app.
"""

import skitai


@skitai.websocket
async def app(ws: skitai.WebSocket) -> None:
    async for message in ws:
        await ws.send(message)
