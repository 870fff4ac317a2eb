"""The live event sequence of sweeps, served as Server-Sent Events.

The sequence itself is stored (``service/store/events.py``); this package only reads it
and frames it, so every API replica serves the same events with the same ids.
"""
