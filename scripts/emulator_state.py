"""The local emulator's state, saved when it stops and loaded when it starts (`make run` keeps its jobs).

moto keeps everything in memory, in one backend object per service, account and
region. This pickles those of the services the stack uses (DynamoDB, S3, SQS,
SNS) as one object graph, so the SNS subscriptions still point at their queues,
and loads them back into a fresh emulator before it serves its first request.
moto's S3 objects pickle their bytes themselves; its locks and condition
variables cannot be pickled and are made anew on load (nothing holds one once
the emulator has stopped serving).

A message a consumer had received but not yet deleted is made visible again on
load: its consumer was stopped with the stack, and SQS redelivers it after the
visibility timeout anyway (every step is idempotent; docs/reliability.md).

The file is written next to the emulator's log (`.local-stack/`), to a temporary
name and renamed, so a stop interrupted half way leaves the previous state. A
file this moto cannot read (another moto version, a damaged file) is set aside
as ``*.unreadable`` and the emulator starts empty, saying so.
"""

from __future__ import annotations

import io
import os
import pickle
import threading
from pathlib import Path
from typing import Any

SERVICES = ("dynamodb", "s3", "sqs", "sns")
# State a service keeps beside its backends, on its backend dict: S3's map of bucket names to
# accounts, without which a loaded bucket is not found by name.
BESIDE = {"s3": ("bucket_accounts",)}
FORMAT = 1  # bump when what is saved changes shape

_FRESH = {  # a lock or condition variable is saved as "make a new one"
    threading.Condition: threading.Condition,
    type(threading.RLock()): threading.RLock,
    type(threading.Lock()): threading.Lock,
}


class _Pickler(pickle.Pickler):
    """Pickles moto's backends, with each lock or condition variable reduced to a fresh one."""

    def reducer_override(self, obj: Any) -> Any:
        make = _FRESH.get(type(obj))
        return (make, ()) if make is not None else NotImplemented


def _backends() -> dict[str, dict[str, dict[str, Any]]]:
    """service -> account -> region -> moto backend, for every backend moto has made."""
    from moto.backends import get_backend

    return {
        service: {account: dict(regions) for account, regions in get_backend(service).items() if regions}
        for service in SERVICES
    }


def _beside() -> dict[str, dict[str, Any]]:
    from moto.backends import get_backend

    return {service: {name: getattr(get_backend(service), name) for name in names} for service, names in BESIDE.items()}


def save(path: Path) -> int:
    """Write every backend to ``path`` (atomically); the number of backends saved."""
    for attempt in range(3):
        backends = _backends()
        buffer = io.BytesIO()
        try:
            _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(
                {"format": FORMAT, "backends": backends, "beside": _beside()}
            )
            break
        except RuntimeError:  # a request still being served changed a dict while it was pickled
            if attempt == 2:
                raise
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(buffer.getvalue())
    os.replace(partial, path)
    return sum(len(regions) for accounts in backends.values() for regions in accounts.values())


def load(path: Path) -> int:
    """Put the backends saved in ``path`` into this process's moto; the number loaded.

    Raises ValueError (the file set aside as ``*.unreadable``) when this moto cannot read it.
    """
    from moto.backends import get_backend

    try:
        saved = pickle.loads(path.read_bytes())  # noqa: S301 - our own file, written by save()
        if not isinstance(saved, dict) or saved.get("format") != FORMAT:
            raise ValueError(f"format {saved.get('format') if isinstance(saved, dict) else '?'}, not {FORMAT}")
    except Exception as exc:
        aside = path.with_name(path.name + ".unreadable")
        os.replace(path, aside)
        raise ValueError(f"{path} is unreadable ({type(exc).__name__}: {exc}); set aside as {aside.name}") from exc
    count = 0
    for service, accounts in saved["backends"].items():
        backend_dict = get_backend(service)
        for account, regions in accounts.items():
            for region, backend in regions.items():
                backend_dict[account][region] = backend
                count += 1
    for service, attributes in saved["beside"].items():
        for name, value in attributes.items():
            getattr(get_backend(service), name).update(value)
    _release_in_flight_messages()
    return count


def _release_in_flight_messages() -> None:
    """Make every received-but-not-deleted message visible: its consumer stopped with the stack."""
    from moto.backends import get_backend

    for regions in get_backend("sqs").values():
        for backend in regions.values():
            for queue in backend.queues.values():
                for message in queue._messages:
                    message.visible_at = 0.0
