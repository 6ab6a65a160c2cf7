"""Alpaca's real-time market-data stream: the pieces that need no socket.

`protocol` (framing, messages, error codes), `backoff` (reconnection delays), `minutes`
(the minute bars received, updated bars replacing the first ones) and `journal` (the
crash-safe append log of what arrived). The WebSocket client and `aurora stream` build on
them (issue 16; not yet here).
"""
