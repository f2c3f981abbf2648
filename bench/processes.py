"""Servers the benchmark starts itself, on free loopback ports: bitmill and nginx.

Each is started as a child process and stopped by its pid (SIGTERM, then SIGKILL
after a grace period), never by name.
"""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time

START_TIMEOUT_SECONDS = 30
STOP_GRACE_SECONDS = 20


def freePort():
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stopProcess(process):
    """Stop a child started with subprocess.Popen: SIGTERM, then SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class BitmillServer:
    """One `bitmill serve` with a fresh data directory and its own API key."""

    def __init__(self, binary, data_dir, workers=None):
        self.binary = binary
        self.data_dir = data_dir
        self.workers = workers
        # bitmill accepts API keys of 16 characters or more.
        self.api_key = "bench-" + secrets.token_hex(16)
        self.process = None
        self.api_url = None
        self.delivery_url = None
        self.log_path = os.path.join(data_dir, "server.log")

    @property
    def pid(self):
        return self.process.pid

    def start(self):
        os.makedirs(self.data_dir, exist_ok=True)
        command = [self.binary, "serve", "--data-dir", self.data_dir,
                   "--listen", "127.0.0.1:0", "--delivery-listen", "127.0.0.1:0",
                   "--api-key", self.api_key, "--log-level", "warn"]
        if self.workers is not None:
            command += ["--workers", str(self.workers)]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT)
        listen_file = os.path.join(self.data_dir, "listen.json")
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"bitmill serve exited {self.process.returncode} at start; "
                                   f"log: {self.logTail()}")
            try:
                with open(listen_file) as listen:
                    addresses = json.load(listen)
                self.api_url = addresses["api"]
                self.delivery_url = addresses["delivery"]
                return self
            except (FileNotFoundError, json.JSONDecodeError, KeyError):
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"bitmill serve wrote no {listen_file} within "
                           f"{START_TIMEOUT_SECONDS} s; log: {self.logTail()}")

    def logTail(self, characters=2000):
        try:
            with open(self.log_path, "rb") as log:
                return log.read().decode("utf-8", "replace")[-characters:]
        except FileNotFoundError:
            return "(no log)"

    def stop(self):
        if self.process is not None:
            stopProcess(self.process)


class NginxServer:
    """nginx in the foreground with its own configuration, serving one static file.

    Every path it writes (pid file, logs, temporary bodies) is inside `folder`.
    """

    def __init__(self, folder, file_name, content, worker_processes):
        self.folder = folder
        self.file_name = file_name
        self.content = content
        self.worker_processes = worker_processes
        self.port = None
        self.process = None
        self.config_path = os.path.join(folder, "nginx.conf")

    @property
    def pid(self):
        return self.process.pid

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/{self.file_name}"

    def _writeConfig(self):
        root = os.path.join(self.folder, "www")
        os.makedirs(root, exist_ok=True)
        with open(os.path.join(root, self.file_name), "wb") as static_file:
            static_file.write(self.content)
        # Worker processes of an nginx started by root run as "nobody", which must be
        # able to read the static file.
        for path in (self.folder, root):
            os.chmod(path, 0o755)
        os.chmod(os.path.join(root, self.file_name), 0o644)
        folder = self.folder
        config = f"""
worker_processes {self.worker_processes};
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{
    worker_connections 1024;
}}
http {{
    access_log off;
    client_body_temp_path {folder}/client_body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    types {{
        application/json json;
    }}
    default_type application/json;
    server {{
        listen 127.0.0.1:{self.port};
        root {root};
    }}
}}
"""
        with open(self.config_path, "w") as config_file:
            config_file.write(config)

    def start(self):
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.port = freePort()
        self._writeConfig()
        log_path = os.path.join(self.folder, "stderr.log")
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                [nginx, "-p", self.folder, "-e", os.path.join(self.folder, "error.log"),
                 "-c", self.config_path, "-g", "daemon off;"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                with open(log_path, "rb") as log:
                    detail = log.read().decode("utf-8", "replace")[-2000:]
                raise RuntimeError(f"nginx exited {self.process.returncode} at start: {detail}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nginx did not listen on port {self.port} within "
                           f"{START_TIMEOUT_SECONDS} s")

    def stop(self):
        if self.process is not None:
            stopProcess(self.process)
