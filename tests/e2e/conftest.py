"""What the e2e tests of `make run` check of the stack's output."""

from __future__ import annotations

# A clean stop logs none of these (issue 16): a traceback from any process, kombu's "Error in
# timer" (a callback of the worker's event loop raised) or Celery's "Unrecoverable error" (the
# worker died on it).
STOP_SYMPTOMS = ("Traceback", "Error in timer", "Unrecoverable error")


def assert_no_stop_symptoms(**outputs: str) -> None:
    """Fail naming the output (keyword) and each line of it where a process logged a symptom."""
    found = [
        f"{name}: {line}"
        for name, text in outputs.items()
        for line in text.splitlines()
        if any(symptom in line for symptom in STOP_SYMPTOMS)
    ]
    assert not found, "\n".join(found)
