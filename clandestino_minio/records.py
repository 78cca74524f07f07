"""The control records of the MinIO backend: one JSON object, the index, changed as a whole.

The original kept one object per migration (key = its name, body `1`). Those stay where they
are, read as applied records; the index holds ours, with checksum, duration and markers, and the
names of the original's objects it has taken over (so that a rollback of one is not undone by
the object still being there). `holder` and `seq` fence it: the lock holder stamps its token
in it before anything else, and every write is conditional on the ETag it last wrote, so a
deployer whose lease was taken over can write nothing more (see `clandestino_minio.store`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from clandestino.store import AppliedMigration, Interruption, utc_from_text

__all__ = ["INDEX_KEY", "RecordIndex"]

INDEX_KEY = ".clandestino/records.json"


@dataclass
class RecordIndex:
    # name -> {"applied_at": ISO text or None (a marker only), "checksum", "duration_ms",
    # "in_progress": {"direction", "owner", "since"} or None}, in the order written.
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The original's objects this index speaks for (taken over, or rolled back).
    taken: list[str] = field(default_factory=list)
    holder: str | None = None
    seq: int = 0

    @classmethod
    def parse(cls, body: bytes) -> RecordIndex:
        data = json.loads(body)
        return cls(dict(data["records"]), list(data["taken"]), data.get("holder"), data["seq"])

    def dump(self) -> bytes:
        self.seq += 1
        data = {"records": self.records, "taken": self.taken, "holder": self.holder}
        return json.dumps({**data, "seq": self.seq}, separators=(",", ":")).encode()

    def applied(self, originals: dict[str, datetime | None]) -> list[AppliedMigration]:
        found = [_applied(name, entry) for name, entry in self.records.items()]
        found += [
            AppliedMigration(name, at)
            for name, at in originals.items()
            if name not in self.records and name not in self.taken
        ]
        oldest = datetime.min.replace(tzinfo=UTC)
        return sorted(found, key=lambda record: record.applied_at or oldest)

    def entry(self, name: str, originals: dict[str, datetime | None]) -> dict[str, Any] | None:
        """The record or marker of `name`, an original object's taken into the index first."""
        if name not in self.records and name in originals and name not in self.taken:
            at = originals[name]
            self.records[name] = {"applied_at": at.isoformat() if at else None, "original": True}
            self.taken.append(name)
        return self.records.get(name)


def _applied(name: str, entry: dict[str, Any]) -> AppliedMigration:
    marker = entry.get("in_progress")
    interrupted = None
    if isinstance(marker, dict):
        since = utc_from_text(marker.get("since"))
        interrupted = Interruption(str(marker["direction"]), str(marker["owner"]), since)
    return AppliedMigration(
        name,
        utc_from_text(entry.get("applied_at")),
        entry.get("checksum"),
        entry.get("duration_ms"),
        interrupted,
    )
