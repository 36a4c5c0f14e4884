"""Guards on what the package will load or trust."""

from __future__ import annotations

import re

_ALLOWED = re.compile(r"^(models:/[A-Za-z0-9_.-]+(@[A-Za-z0-9_-]+|/\d+)|models:/m-[0-9a-f]+|runs:/[0-9a-f]+/[A-Za-z0-9_./-]+)$")


class UntrustedModelURI(ValueError):
    """A model location outside the configured tracking server's registry."""


def check_model_uri(uri: str) -> str:
    """Only the configured registry: ``models://profile@host/...``, paths, URLs and ``..`` are refused."""
    # '..' in a runs:/ artifact path would climb out of the run's artifacts into another run's
    if not isinstance(uri, str) or not _ALLOWED.match(uri) or ".." in uri.split("/"):
        raise UntrustedModelURI(
            f"refusing to load model from {uri!r}: only models:/NAME@ALIAS, models:/NAME/VERSION or runs:/ID/PATH "
            "on the configured tracking server are allowed"
        )
    return uri
