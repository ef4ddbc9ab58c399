"""The emulator for the Terraform apply: scripts/emulator.py's moto, plus what moto lacks for it.

    python tests/deploy/emulator_shim.py --port N

moto 5.2 has no Application Auto Scaling ListTagsForResource/TagResource/UntagResource: it
answers 500, and the AWS provider retries the read of every aws_appautoscaling_target for
many minutes. Test only: this answers those three with "no tags" (the scalable targets,
policies and everything else still go to moto). Production is untouched.

And moto answers the delete of a scaling policy or a scalable target that is not there with a
ValidationException, where AWS answers ObjectNotFoundException — which the AWS provider takes as
"deleted already". A delete sent twice (the provider's retry of one whose answer came late) then
failed `terraform destroy` on the emulator, once in CI; it now gets AWS's answer.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import emulator

_MISSING = {
    "AnyScaleFrontendService.ListTagsForResource": {"Tags": {}},
    "AnyScaleFrontendService.TagResource": {},
    "AnyScaleFrontendService.UntagResource": {},
}


def answer_missing_as_aws_does() -> None:
    """moto's deletes of a missing scaling policy or scalable target raise AWS's ObjectNotFoundException."""
    from moto.applicationautoscaling.models import ApplicationAutoscalingBackend
    from moto.core.exceptions import JsonRESTError

    for name in ("delete_scaling_policy", "deregister_scalable_target"):
        moto_delete = getattr(ApplicationAutoscalingBackend, name)

        def delete(self, *args, _moto_delete=moto_delete, **kwargs):
            try:
                return _moto_delete(self, *args, **kwargs)
            except JsonRESTError as exc:
                if exc.error_type != "ValidationException" or "found" not in exc.message:
                    raise
                raise JsonRESTError("ObjectNotFoundException", exc.message) from None

        setattr(ApplicationAutoscalingBackend, name, delete)


class AutoScalingTags:
    """WSGI middleware: answers the Application Auto Scaling tag calls moto does not implement."""

    def __init__(self, app) -> None:
        self._app = app

    def __call__(self, environ, start_response):
        answer = _MISSING.get(environ.get("HTTP_X_AMZ_TARGET", ""))
        if answer is None:
            return self._app(environ, start_response)
        body = json.dumps(answer).encode()
        start_response("200 OK", [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(body)))])
        return [body]


if __name__ == "__main__":
    answer_missing_as_aws_does()
    emulator.main(wrap=AutoScalingTags)
