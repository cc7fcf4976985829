"""Anymail webhook receivers: normalise the event and hand it to one service."""
