"""Drive a VMM through its API socket: start it with --api-sock, send
well-formed requests (http.client over AF_UNIX) or raw bytes, and collect
what the guest prints.

Socket paths live in short /tmp directories: sun_path holds 107 bytes,
less than pytest's tmp_path may need.
"""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=10):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


@dataclass
class Response:
    status: int
    headers: dict
    body: bytes

    @property
    def json(self):
        return json.loads(self.body) if self.body else None

    @property
    def fault(self):
        j = self.json
        return j.get("fault_message", "") if isinstance(j, dict) else ""


def short_dir():
    return tempfile.mkdtemp(prefix="vmm-api-", dir="/tmp")


def parse_status(raw):
    """The status code of the first response in raw bytes, or None."""
    if not raw.startswith(b"HTTP/1.1 "):
        return None
    return int(raw[9:12])


def all_statuses(raw):
    """Status codes of every response in raw (final ones, 100 skipped)."""
    out = []
    while raw.startswith(b"HTTP/1.1 "):
        head, _, rest = raw.partition(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v.strip())
        if status != 100:
            out.append(status)
        raw = rest[length:]
    return out


class Vmm:
    """A VMM process serving its API on a socket of its own."""

    def __init__(self, vmm_bin, args=(), env=None, sock=None, wait=True, api=True, prefix=()):
        self.dir = short_dir()
        self.sock = sock or os.path.join(self.dir, "api.sock")
        self.lines = []  # (monotonic seconds, stdout line)
        self.err = []
        # prefix: e.g. `ip netns exec NS` (a path socket is reachable from any
        # network namespace).
        cmd = [str(p) for p in prefix] + [str(vmm_bin)] + \
            (["--api-sock", self.sock] if api else []) + [str(a) for a in args]
        e = os.environ.copy()
        e.update(env or {})
        self.start_time = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=e)
        self.readers = [threading.Thread(target=self._read_out, daemon=True),
                        threading.Thread(target=self._read_err, daemon=True)]
        for t in self.readers:
            t.start()
        if wait and api:
            self.wait_ready()

    def _read_out(self):
        for raw in iter(self.proc.stdout.readline, b""):
            self.lines.append((time.monotonic(), raw.decode("utf-8", "replace").rstrip("\r\n")))

    def _read_err(self):
        for raw in iter(self.proc.stderr.readline, b""):
            self.err.append(raw.decode("utf-8", "replace"))

    @property
    def stderr(self):
        return "".join(self.err)

    def wait_ready(self, timeout=10):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"vmm exited with {self.proc.returncode}: {self.stderr}")
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(self.sock)
                s.close()
                return
            except OSError:
                time.sleep(0.005)
        raise AssertionError("the API socket never accepted: " + self.stderr)

    def request(self, method, path, body=None, headers=None, timeout=15):
        conn = UnixHTTPConnection(self.sock, timeout=timeout)
        try:
            data = body
            if isinstance(body, (dict, list)):
                data = json.dumps(body)
            conn.request(method, path, body=data, headers=headers or {})
            r = conn.getresponse()
            return Response(r.status, dict(r.getheaders()), r.read())
        finally:
            conn.close()

    def get(self, path):
        return self.request("GET", path)

    def put(self, path, body):
        return self.request("PUT", path, body)

    def patch(self, path, body):
        return self.request("PATCH", path, body)

    def state(self):
        r = self.get("/")
        assert r.status == 200, r
        return r.json["state"]

    def raw(self, data, timeout=5.0, shutdown=False, chunks=None, delay=0.0):
        """Send bytes (or `chunks` with `delay` between them) on a fresh
        connection; return everything the server sends until it closes or
        `timeout` passes."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(self.sock)
        try:
            for i, c in enumerate(chunks if chunks is not None else [data]):
                if i and delay:
                    time.sleep(delay)
                try:
                    s.sendall(c)
                except (BrokenPipeError, ConnectionResetError):
                    break  # the server refused early and closed
            if shutdown:
                s.shutdown(socket.SHUT_WR)
            out = b""
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                try:
                    b = s.recv(65536)
                except socket.timeout:
                    break
                except ConnectionResetError:
                    break
                if not b:
                    break
                out += b
            return out
        finally:
            s.close()

    def counters(self):
        """The n of every COUNTER line so far."""
        return [int(l.split()[1]) for _, l in list(self.lines) if l.startswith("COUNTER ")]

    def wait_line(self, prefix, timeout=10):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for _, l in list(self.lines):
                if l.startswith(prefix):
                    return l
            if self.proc.poll() is not None:
                break
            time.sleep(0.01)
        raise AssertionError(f"no line starting {prefix!r}; output: {self.lines[-20:]} "
                             f"stderr: {self.stderr}")

    def wait_exit(self, timeout=30):
        try:
            status = self.proc.wait(timeout=timeout)
        finally:
            for t in self.readers:
                t.join(timeout=5)
        return status

    def stop(self):
        """SIGTERM; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.wait_exit(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("vmm ignored SIGTERM")

    def close(self):
        # pytest shows this only when the test failed.
        print(f"vmm {self.sock}: status {self.proc.poll()}, stderr:\n{self.stderr}")
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
