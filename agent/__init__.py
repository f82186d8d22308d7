"""The probe-box side of wardprobe: measurements, scheduler, spool, uploader."""

from wardprobe import __version__ as AGENT_VERSION

__all__ = ["AGENT_VERSION"]
