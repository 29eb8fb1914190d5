"""Parley: a self-hosted meeting server (voice, video, screen sharing and chat)."""

__version__ = "0.1.0"
