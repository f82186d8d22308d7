"""The enrolled box's identity on disk: what the running agent needs.

Kept apart from agent/enrolment.py so that the daemon does not load the
`cryptography` package (about 15 MB resident) that only enrolling needs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import grpc

PROBE_KEY_FILE = "probe.key"
PROBE_CERT_FILE = "probe.crt"
CA_CERT_FILE = "ca.crt"
ENROLMENT_FILE = "enrolment.json"


class EnrolmentError(Exception):
    """Base of the errors a technician can meet while enrolling."""


@dataclass(frozen=True)
class EnrolmentRecord:
    """What the box knows about its enrolment (enrolment.json)."""

    probe_id: str
    ward_code: int
    ward_name: str
    site_class: str
    ingest_address: str  # host:port of the aggregator's mTLS port
    enrolled_at: datetime  # timezone-aware UTC
    certificate_not_after: datetime  # the probe certificate's expiry, UTC

    def to_json(self) -> str:
        """The enrolment.json text."""
        return json.dumps(
            {
                "probe_id": self.probe_id,
                "ward_code": self.ward_code,
                "ward_name": self.ward_name,
                "site_class": self.site_class,
                "ingest_address": self.ingest_address,
                "enrolled_at": self.enrolled_at.isoformat(),
                "certificate_not_after": self.certificate_not_after.isoformat(),
            },
            ensure_ascii=False,
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> EnrolmentRecord:
        """Parse enrolment.json text."""
        data = json.loads(text)
        return cls(
            probe_id=str(data["probe_id"]),
            ward_code=int(data["ward_code"]),
            ward_name=str(data["ward_name"]),
            site_class=str(data["site_class"]),
            ingest_address=str(data["ingest_address"]),
            enrolled_at=datetime.fromisoformat(data["enrolled_at"]),
            certificate_not_after=datetime.fromisoformat(data["certificate_not_after"]),
        )


def load_enrolment(state_dir: Path) -> EnrolmentRecord | None:
    """The box's enrolment, or None when it has not been enrolled."""
    path = state_dir / ENROLMENT_FILE
    if not path.exists():
        return None
    return EnrolmentRecord.from_json(path.read_text(encoding="utf-8"))


def channel_credentials(state_dir: Path) -> grpc.ChannelCredentials:
    """mTLS credentials for the aggregator's ingest port: this probe's key and
    certificate, trusting only the enrolment CA."""
    try:
        return grpc.ssl_channel_credentials(
            root_certificates=(state_dir / CA_CERT_FILE).read_bytes(),
            private_key=(state_dir / PROBE_KEY_FILE).read_bytes(),
            certificate_chain=(state_dir / PROBE_CERT_FILE).read_bytes(),
        )
    except FileNotFoundError as exc:
        raise EnrolmentError(f"this box is not enrolled ({exc.filename} is missing)") from exc
