"""A small keep-alive HTTP client for bitmill's API and delivery listeners.

urllib opens a new connection per request, which would add a TCP handshake to every
poll of a task. Each thread here keeps one http.client connection per listener instead.
"""

import http.client
import json
import os
import threading
import urllib.parse

REQUEST_TIMEOUT_SECONDS = 120
# http.client raises these when the server closed an idle keep-alive connection.
CONNECTION_CLOSED_ERRORS = (http.client.RemoteDisconnected, BrokenPipeError,
                            ConnectionResetError, http.client.CannotSendRequest)


class HttpError(RuntimeError):
    """A response whose status is not the one the caller expected."""


class KeepAliveClient:
    """Sends requests to one base URL over one connection per calling thread."""

    def __init__(self, base_url, headers=None):
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme != "http" or not parsed.hostname or not parsed.port:
            raise ValueError(f"base URL must be http://host:port, got {base_url!r}")
        self.host = parsed.hostname
        self.port = parsed.port
        self.path_prefix = parsed.path.rstrip("/")
        self.headers = dict(headers or {})
        self._local = threading.local()

    def _connection(self):
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(self.host, self.port,
                                                    timeout=REQUEST_TIMEOUT_SECONDS)
            self._local.connection = connection
        return connection

    def _dropConnection(self):
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    def request(self, method, path, body=None, headers=None):
        """Send one request and return (status, response headers, body bytes).

        When the server had already closed the idle connection, the request is sent once
        more on a new connection. The server never saw the first attempt.
        """
        all_headers = dict(self.headers)
        all_headers.update(headers or {})
        for attempt in range(2):
            connection = self._connection()
            try:
                if hasattr(body, "seek"):
                    body.seek(0)
                connection.request(method, self.path_prefix + path, body=body,
                                   headers=all_headers)
                response = connection.getresponse()
                data = response.read()
            except CONNECTION_CLOSED_ERRORS:
                self._dropConnection()
                if attempt == 1:
                    raise
                continue
            except Exception:
                self._dropConnection()
                raise
            if response.will_close:
                self._dropConnection()
            return response.status, response.headers, data
        raise AssertionError("unreachable")

    def requestJson(self, method, path, payload=None, expected_status=(200,), headers=None):
        """Send JSON (when `payload` is not None) and return the decoded JSON response."""
        body = None
        all_headers = dict(headers or {})
        if payload is not None:
            body = json.dumps(payload).encode()
            all_headers["Content-Type"] = "application/json"
        status, _, data = self.request(method, path, body, all_headers)
        if status not in expected_status:
            detail = data.decode("utf-8", "replace")[:2000]
            raise HttpError(f"{method} {path} returned HTTP {status}, expected "
                            f"{' or '.join(map(str, expected_status))}: {detail}")
        return json.loads(data)

    def close(self):
        self._dropConnection()


class BitmillClient:
    """bitmill's API calls that the benchmark needs."""

    def __init__(self, api_url, delivery_url, api_key):
        authorization = {"Authorization": "Bearer " + api_key}
        self.api = KeepAliveClient(api_url, authorization)
        self.delivery = KeepAliveClient(delivery_url, authorization)

    def upload(self, path, folder="bench"):
        """Upload a local file through the delivery listener and return its file id."""
        name = urllib.parse.quote(os.path.basename(path))
        with open(path, "rb") as source:
            size = os.fstat(source.fileno()).st_size
            status, _, data = self.delivery.request(
                "PUT", f"/{folder}/{name}", source,
                {"Content-Type": "application/octet-stream", "Content-Length": str(size)})
        if status != 201:
            raise HttpError(f"upload {path} returned HTTP {status}: "
                            f"{data.decode('utf-8', 'replace')[:2000]}")
        return json.loads(data)["id"]

    def submitTask(self, options):
        return self.api.requestJson("POST", "/tasks", options, expected_status=(201,))

    def getTask(self, task_id):
        return self.api.requestJson("GET", f"/tasks/{task_id}")

    def getTaskBody(self, task_id):
        """Return the raw bytes of GET /tasks/{id}, as wrk will receive them."""
        status, _, data = self.api.request("GET", f"/tasks/{task_id}")
        if status != 200:
            raise HttpError(f"GET /tasks/{task_id} returned HTTP {status}")
        return data

    def countTasks(self, status=None):
        """Return how many tasks exist, optionally only those in one status.

        Lists carry their total only in the envelope response mode, which API version
        2025-01-01 selects.
        """
        query = "?limit=1" + (f"&status={status}" if status else "")
        envelope = self.api.requestJson("GET", "/tasks" + query,
                                        headers={"Accept-Version": "2025-01-01"})
        return int(envelope["meta"]["total"])
