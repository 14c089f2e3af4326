"""A requests session that fails one request, for the paths where a client's second call fails."""

from __future__ import annotations

import requests


class FailingOnce(requests.Session):
    """A session whose first request matching ``method`` and ``path_end`` fails: no answer (a timeout),
    or NPM answering ``status``; every other request reaches the server."""

    def __init__(self, method: str, path_end: str, status: int | None = None) -> None:
        super().__init__()
        self.method, self.path_end, self.status, self.failed = method, path_end, status, False

    def request(self, method, url, *args, **kwargs):  # type: ignore[override]
        if not self.failed and method == self.method and url.endswith(self.path_end):
            self.failed = True
            if self.status is None:
                raise requests.ReadTimeout("read timed out")
            answer = requests.Response()
            answer.status_code, answer._content = self.status, b'{"error":{"message":"Internal Error"}}'
            return answer
        return super().request(method, url, *args, **kwargs)
