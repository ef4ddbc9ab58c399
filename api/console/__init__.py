"""The web console: server-rendered pages under /console/ for submitting, listing and exploring jobs.

Its pages read jobs through the same store calls and presenters as the JSON endpoints, and its
script calls only the public endpoints (POST /generate-scene, GET /status, the operator retry and
cancel) besides re-reading its own pages. Every console response carries a strict
Content-Security-Policy: no inline script or style anywhere, so a job's prompt can never run as
code even if escaping were ever missed.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, Flask, current_app

from api.console.assets import Assets

bp = Blueprint("console", __name__, template_folder="templates")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def content_security_policy(image_origin: str | None) -> str:
    """The console's CSP; ``image_origin`` is where presigned artifact URLs point (None in demo mode)."""
    images = "'self'" + (f" {image_origin}" if image_origin else "")
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src {images}",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def artifact_origin(services) -> str | None:
    """scheme://host[:port] of the artifact store's presigned URLs, or None when it has none (demo mode)."""
    url = services.artifacts.url_for("jobs/console-origin-probe", expires_in=60)  # local computation, no request
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@bp.after_request
def _secure(response):
    state = current_app.extensions["ghost_engine"]
    if "console_csp" not in state:
        state["console_csp"] = content_security_policy(artifact_origin(state["services"]))
    response.headers["Content-Security-Policy"] = state["console_csp"]
    response.headers.update(SECURITY_HEADERS)
    return response


def register_console(app: Flask) -> None:
    """Mount the console (and its link from /) on the API app."""
    from api.console import pages  # noqa: F401 - imported for its effect: registers the views on bp

    app.extensions["ghost_engine"]["console_assets"] = Assets()
    app.register_blueprint(bp)
