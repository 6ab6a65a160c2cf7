"""Alpaca's real-time market-data stream.

The pieces that need no socket: `protocol` (framing, messages, error codes), `backoff`
(reconnection delays), `minutes` (the minute bars received, updated bars replacing the
first ones), `market` (each symbol's running daily bar and trading statuses: halts),
`journal` (the crash-safe append log of what arrived) and `daily_check` (the stored
minutes against the last streamed daily bar). `client` is the WebSocket session and
`day` what `aurora stream` runs.
"""
