"""The control API end to end: every endpoint on its success and failure
paths, malformed requests (each gets its 4xx and the VMM keeps serving),
a guest configured and started purely through the socket or a config
file, pause/resume against the test guest's `counter`, metrics, the
logger, drive swaps, `vmm ctl`, and the socket's life (stale files,
another VMM on it).
"""
import json
import os
import pathlib
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import vmmrun  # noqa: E402
from apiclient import Vmm, all_statuses, parse_status, short_dir  # noqa: E402

TIMEOUT_MS = 400  # VMM_API_TIMEOUT_MS for the slow-client cases
MIB = 1 << 20


@pytest.fixture(scope="module")
def idle(vmm_bin):
    """One VMM waiting for its configuration, shared by the malformed
    request cases (each checks it still serves)."""
    v = Vmm(vmm_bin, ["--console", "none"], env={"VMM_API_TIMEOUT_MS": str(TIMEOUT_MS)})
    yield v
    v.close()


def start_counter(api, guest, cpus=1, extra=(), env=None):
    """A running guest that prints COUNTER lines until stopped."""
    v = api("--kernel", guest["elf"], "--cmdline", "guest.test=counter", "--cpus", cpus,
            *extra, env=env)
    v.wait_line("COUNTER 2 ")
    return v


# ---- GET /, /version, the socket ----

def test_instance_info(api):
    v = api("--id", "vm-42")
    r = v.get("/")
    assert r.status == 200
    assert r.headers["Content-Type"] == "application/json"
    assert r.json == {"id": "vm-42", "state": "Not started", "vmm_version": r.json["vmm_version"],
                      "app_name": "vmm"}
    assert r.json["vmm_version"]
    r = v.get("/version")
    assert r.status == 200 and r.json == {"vmm_version": r.json["vmm_version"]}
    assert v.stop() == vmmrun.EXIT_SIGNAL
    assert not os.path.exists(v.sock), "the socket file is removed on exit"


def test_stale_socket_is_replaced(vmm_bin, api):
    d = short_dir()
    path = os.path.join(d, "api.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()  # the file stays, nobody listens: stale
    v = api(sock=path)
    assert v.get("/").status == 200


def test_socket_in_use_is_refused(vmm_bin, api):
    a = api()
    r = vmmrun.run(vmm_bin, ["--api-sock", a.sock], timeout=10)
    assert r.status == vmmrun.EXIT_RESOURCE
    assert "another process is listening on it" in r.stderr
    assert a.get("/").status == 200, "the first VMM keeps its socket"


def test_socket_path_not_a_socket(vmm_bin, tmp_path):
    d = short_dir()
    path = os.path.join(d, "file")
    pathlib.Path(path).write_text("precious")
    r = vmmrun.run(vmm_bin, ["--api-sock", path], timeout=10)
    assert r.status == vmmrun.EXIT_RESOURCE
    assert "exists and is not a socket" in r.stderr
    assert pathlib.Path(path).read_text() == "precious"


def test_socket_path_too_long(vmm_bin):
    r = vmmrun.run(vmm_bin, ["--api-sock", "/tmp/" + "x" * 200], timeout=10)
    assert r.status == vmmrun.EXIT_RESOURCE
    assert "--api-sock" in r.stderr


def test_keep_alive_and_pipelining(api):
    v = api()
    from apiclient import UnixHTTPConnection
    conn = UnixHTTPConnection(v.sock)
    for _ in range(20):
        conn.request("GET", "/")
        r = conn.getresponse()
        assert r.status == 200
        r.read()
    conn.close()
    req = b"GET / HTTP/1.1\r\n\r\n" * 5 + b"GET /version HTTP/1.1\r\nConnection: close\r\n\r\n"
    assert all_statuses(v.raw(req)) == [200] * 6


def test_head_gets_no_body(api):
    v = api()
    from apiclient import UnixHTTPConnection
    conn = UnixHTTPConnection(v.sock)
    conn.request("HEAD", "/")
    r = conn.getresponse()
    assert r.status == 405 and r.getheader("Allow") == "GET"
    assert r.read() == b""
    conn.request("GET", "/")  # the connection is still in step
    r = conn.getresponse()
    assert r.status == 200 and json.loads(r.read())["app_name"] == "vmm"
    conn.close()


def test_expect_100_continue(api):
    v = api()
    body = json.dumps({"vcpu_count": 2, "mem_size_mib": 64}).encode()
    head = (b"PUT /machine-config HTTP/1.1\r\nExpect: 100-continue\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body))
    out = v.raw(b"", chunks=[head, body], delay=0.1, timeout=2)
    assert out.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204")
    assert v.get("/machine-config").json["vcpu_count"] == 2


def test_slow_client_gets_408_and_others_are_served(api):
    v = api(env={"VMM_API_TIMEOUT_MS": "500"})
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(v.sock)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x")  # and then nothing
    t0 = time.monotonic()
    assert v.get("/").status == 200  # another client is not held up
    assert time.monotonic() - t0 < 0.4
    s.settimeout(5)
    out = s.recv(4096)
    s.close()
    assert parse_status(out) == 408
    assert b"Connection: close" in out
    assert v.get("/").status == 200


def test_connection_limit(api):
    v = api()
    conns = []
    for _ in range(32):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(v.sock)
        conns.append(s)
    time.sleep(0.1)
    out = v.raw(b"GET / HTTP/1.1\r\n\r\n", timeout=2)
    assert parse_status(out) == 503
    for s in conns:
        s.close()
    time.sleep(0.1)
    assert v.get("/").status == 200


# ---- malformed requests: each gets its 4xx and the VMM keeps serving ----

def _req(method, path, body=None, extra=b"", close=False):
    head = b"%s %s HTTP/1.1\r\nHost: x\r\n" % (method.encode(), path.encode())
    if close:
        head += b"Connection: close\r\n"
    if body is not None:
        data = body if isinstance(body, bytes) else body.encode()
        return head + b"Content-Length: %d\r\n" % len(data) + extra + b"\r\n" + data
    return head + extra + b"\r\n"


FRAMING = [
    ("bare_lf", b"GET / HTTP/1.1\nHost: x\n\n", 400),
    ("bare_cr", b"GET / HTTP/1.1\rHost: x\r\n\r\n", 400),
    ("lowercase_method", b"get / HTTP/1.1\r\n\r\n", 400),
    ("digit_in_method", b"G3T / HTTP/1.1\r\n\r\n", 400),
    ("long_method", b"ABCDEFGHIJKLMNOPQRST / HTTP/1.1\r\n\r\n", 400),
    ("leading_space", b" GET / HTTP/1.1\r\n\r\n", 400),
    ("double_space", b"GET  / HTTP/1.1\r\n\r\n", 400),
    ("no_version", b"GET /\r\n\r\n", 400),
    ("bad_version", b"GET / HTTQ/1.1\r\n\r\n", 400),
    ("http2", b"GET / HTTP/2.0\r\n\r\n", 505),
    ("http12", b"GET / HTTP/1.2\r\n\r\n", 505),
    ("http09_style", b"GET / HTTP/1\r\n\r\n", 400),
    ("absolute_uri", b"GET http://localhost/ HTTP/1.1\r\n\r\n", 400),
    ("asterisk", b"OPTIONS * HTTP/1.1\r\n\r\n", 400),
    ("fragment", b"GET /#x HTTP/1.1\r\n\r\n", 400),
    ("ctl_in_path", b"GET /\x01 HTTP/1.1\r\n\r\n", 400),
    ("utf8_in_path", "GET /é HTTP/1.1\r\n\r\n".encode(), 400),
    ("trailing_token", b"GET / HTTP/1.1 x\r\n\r\n", 400),
    ("empty_first_line", b"\r\nGET / HTTP/1.1\r\n\r\n", 400),
    ("header_no_colon", b"GET / HTTP/1.1\r\nHost\r\n\r\n", 400),
    ("header_space_before_colon", b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400),
    ("header_space_in_name", b"GET / HTTP/1.1\r\nX Y: z\r\n\r\n", 400),
    ("header_empty_name", b"GET / HTTP/1.1\r\n: z\r\n\r\n", 400),
    ("header_folded", b"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", 400),
    ("header_ctl", b"GET / HTTP/1.1\r\nX: a\x07b\r\n\r\n", 400),
    ("header_nul", b"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n", 400),
    ("header_non_ascii", b"GET / HTTP/1.1\r\nX: \xc3\xa9\r\n\r\n", 400),
    ("cl_duplicate", _req("PUT", "/vm", "{}", b"Content-Length: 2\r\n"), 400),
    ("cl_duplicate_differ", b"PUT /vm HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
     400),
    ("cl_alpha", b"PUT /vm HTTP/1.1\r\nContent-Length: ab\r\n\r\n", 400),
    ("cl_negative", b"PUT /vm HTTP/1.1\r\nContent-Length: -2\r\n\r\n{}", 400),
    ("cl_plus", b"PUT /vm HTTP/1.1\r\nContent-Length: +2\r\n\r\n{}", 400),
    ("cl_hex", b"PUT /vm HTTP/1.1\r\nContent-Length: 0x2\r\n\r\n{}", 400),
    ("cl_inner_space", b"PUT /vm HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n", 400),
    ("cl_empty", b"PUT /vm HTTP/1.1\r\nContent-Length:\r\n\r\n", 400),
    ("cl_too_large", b"PUT /vm HTTP/1.1\r\nContent-Length: 51201\r\n\r\n", 413),
    ("cl_enormous", b"PUT /vm HTTP/1.1\r\nContent-Length: 184467440737095516160\r\n\r\n", 413),
    ("body_too_large", _req("PUT", "/machine-config", b"{" + b" " * 60000 + b"}"), 413),
    ("chunked", b"PUT /vm HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 411),
    ("chunked_and_cl", b"PUT /vm HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
     b"Content-Length: 2\r\n\r\n{}", 400),
    ("put_without_length", b"PUT /vm HTTP/1.1\r\n\r\n{}", 411),
    ("patch_without_length", b"PATCH /vm HTTP/1.1\r\n\r\n", 411),
    ("post_without_length", b"POST /actions HTTP/1.1\r\n\r\n", 411),
    ("http10_put_without_length", b"PUT /vm HTTP/1.0\r\n\r\n", 411),
    ("expect_other", _req("PUT", "/vm", "{}", b"Expect: 102-processing\r\n"), 417),
    ("request_line_overflow", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", 414),
    ("header_overflow", b"GET / HTTP/1.1\r\nX: " + b"b" * 9000 + b"\r\n\r\n", 431),
    ("many_headers_overflow", b"GET / HTTP/1.1\r\n" + b"X-Header: value-value\r\n" * 400 +
     b"\r\n", 431),
    ("truncated_then_eof", b"GET / HTTP/1.1\r\nHost: x\r\n", 400),
    ("truncated_body_then_eof", b"PUT /vm HTTP/1.1\r\nContent-Length: 10\r\n\r\n{}", 400),
]


@pytest.mark.parametrize("name,data,status", FRAMING, ids=[c[0] for c in FRAMING])
def test_malformed_framing(idle, name, data, status):
    out = idle.raw(data, shutdown=name.startswith("truncated"))
    assert parse_status(out) == status, out[:200]
    assert b"Connection: close" in out
    body = out.partition(b"\r\n\r\n")[2]
    assert json.loads(body)["fault_message"]
    assert idle.get("/").status == 200


ROUTING = [
    ("unknown_path", "GET", "/nope", None, 404),
    ("double_slash", "GET", "//", None, 404),
    ("trailing_slash", "GET", "/machine-config/", None, 404),
    ("case", "GET", "/VM/CONFIG", None, 404),
    ("version_slash", "GET", "/version/", None, 404),
    ("vm_info_child", "GET", "/vm/info/x", None, 404),
    ("drives_bare", "PUT", "/drives", "{}", 400),
    ("drives_slash", "PUT", "/drives/", "{}", 400),
    ("drives_nested", "PUT", "/drives/a/b", "{}", 400),
    ("drives_bad_id", "PUT", "/drives/a.b", "{}", 400),
    ("drives_long_id", "PUT", "/drives/" + "a" * 65, "{}", 400),
    ("drives_percent", "PUT", "/drives/%2e", "{}", 400),
    ("net_bare", "PUT", "/network-interfaces", "{}", 400),
    ("net_bad_id", "PUT", "/network-interfaces/e!", "{}", 400),
    ("balloon_hinting", "PATCH", "/balloon/hinting/start", "{}", 400),
    ("delete_balloon", "DELETE", "/balloon", None, 405),
    ("put_balloon_stats", "PUT", "/balloon/statistics", "{}", 405),
    ("balloon_stats_child", "GET", "/balloon/statistics/x", None, 404),
    ("snapshot", "PUT", "/snapshot/create", "{}", 400),
    ("vsock", "PUT", "/vsock", "{}", 400),
    ("mmds", "GET", "/mmds", None, 400),
    ("query_on_root", "GET", "/?x=1", None, 400),
    ("query_on_config", "GET", "/vm/config?full=1", None, 400),
    ("delete_root", "DELETE", "/", None, 405),
    ("put_root", "PUT", "/", "{}", 405),
    ("head_root", "HEAD", "/", None, 405),
    ("options_root", "OPTIONS", "/", None, 405),
    ("unknown_method", "BREW", "/", None, 405),
    ("get_actions", "GET", "/actions", None, 405),
    ("post_actions", "POST", "/actions", "{}", 405),
    ("get_boot_source", "GET", "/boot-source", None, 405),
    ("patch_boot_source", "PATCH", "/boot-source", "{}", 405),
    ("delete_machine", "DELETE", "/machine-config", None, 405),
    ("get_drive", "GET", "/drives/a", None, 405),
    ("delete_drive", "DELETE", "/drives/a", None, 405),
    ("get_net", "GET", "/network-interfaces/a", None, 405),
    ("get_vm", "GET", "/vm", None, 405),
    ("put_vm", "PUT", "/vm", "{}", 405),
    ("put_vm_config", "PUT", "/vm/config", "{}", 405),
    ("patch_vm_info", "PATCH", "/vm/info", "{}", 405),
    ("get_logger", "GET", "/logger", None, 405),
    ("get_metrics", "GET", "/metrics", None, 405),
    ("put_version", "PUT", "/version", "{}", 405),
    ("put_debug_memory", "PUT", "/debug/memory", "{}", 405),
]


@pytest.mark.parametrize("name,method,path,body,status", ROUTING, ids=[c[0] for c in ROUTING])
def test_bad_paths_and_methods(idle, name, method, path, body, status):
    out = idle.raw(_req(method, path, body, close=True))
    assert parse_status(out) == status, out[:300]
    head = out.partition(b"\r\n\r\n")[0].decode()
    if status == 405:
        assert "\r\nAllow: " in head
    assert idle.get("/").status == 200


BODIES = [
    # (name, method, path, body, text the fault_message must hold)
    ("json_syntax", "PUT", "/machine-config", '{"vcpu_count": 1,}', "invalid JSON body"),
    ("json_truncated", "PUT", "/machine-config", '{"vcpu_count": 1', "invalid JSON body"),
    ("json_trailing", "PUT", "/machine-config", '{} x', "invalid JSON body"),
    ("json_two_values", "PUT", "/machine-config", "{} {}", "invalid JSON body"),
    ("json_array", "PUT", "/machine-config", "[]", "must be a JSON object"),
    ("json_number", "PUT", "/machine-config", "5", "invalid JSON body"),
    ("json_string", "PUT", "/machine-config", '"x"', "invalid JSON body"),
    ("json_null", "PUT", "/machine-config", "null", "invalid JSON body"),
    ("json_empty", "PUT", "/machine-config", "", "a JSON object body is required"),
    ("json_duplicate_key", "PUT", "/machine-config",
     '{"vcpu_count": 1, "vcpu_count": 2, "mem_size_mib": 64}', "duplicate"),
    ("json_non_utf8", "PATCH", "/vm", b'{"state": "\xff\xfe"}', "invalid JSON body"),
    ("json_overlong_utf8", "PATCH", "/vm", b'{"state": "\xc0\xaf"}', "invalid JSON body"),
    ("json_lone_surrogate", "PATCH", "/vm", b'{"state": "\\ud800"}', "invalid JSON body"),
    ("json_nul_escape", "PATCH", "/vm", '{"state": "Pau\\u0000sed"}', "invalid JSON body"),
    ("json_deep", "PUT", "/machine-config", "[" * 5000 + "]" * 5000, "invalid JSON body"),
    ("get_with_body", "GET", "/", "{}", "GET takes no body"),
    ("machine_unknown_field", "PUT", "/machine-config",
     '{"vcpu_count": 1, "mem_size_mib": 64, "turbo": true}', "turbo: unknown field"),
    ("machine_missing", "PUT", "/machine-config", '{"vcpu_count": 1}',
     "mem_size_mib: missing (required)"),
    ("machine_null_required", "PUT", "/machine-config",
     '{"vcpu_count": null, "mem_size_mib": 64}', "vcpu_count: missing (required)"),
    ("machine_string_count", "PUT", "/machine-config", '{"vcpu_count": "1", "mem_size_mib": 64}',
     "vcpu_count: expected an integer"),
    ("machine_float", "PUT", "/machine-config", '{"vcpu_count": 1.0, "mem_size_mib": 64}',
     "vcpu_count: expected an integer"),
    ("machine_bool_count", "PUT", "/machine-config", '{"vcpu_count": true, "mem_size_mib": 64}',
     "vcpu_count: expected an integer"),
    ("machine_zero_cpus", "PUT", "/machine-config", '{"vcpu_count": 0, "mem_size_mib": 64}',
     "vcpu_count: 0 is out of range"),
    ("machine_many_cpus", "PUT", "/machine-config", '{"vcpu_count": 65, "mem_size_mib": 64}',
     "vcpu_count: 65 is out of range"),
    ("machine_negative_mem", "PUT", "/machine-config", '{"vcpu_count": 1, "mem_size_mib": -1}',
     "mem_size_mib: -1 is out of range"),
    ("machine_huge_mem", "PUT", "/machine-config",
     '{"vcpu_count": 1, "mem_size_mib": 99999999999999999}', "mem_size_mib"),
    ("machine_bignum", "PUT", "/machine-config",
     '{"vcpu_count": 1, "mem_size_mib": 1e400}', "invalid JSON body"),
    ("machine_smt", "PUT", "/machine-config", '{"vcpu_count": 2, "mem_size_mib": 64, "smt": true}',
     "smt: simultaneous multithreading is not supported"),
    ("machine_smt_string", "PUT", "/machine-config",
     '{"vcpu_count": 2, "mem_size_mib": 64, "smt": "false"}', "smt: expected a boolean"),
    ("machine_hugepages", "PUT", "/machine-config",
     '{"vcpu_count": 2, "mem_size_mib": 64, "huge_pages": "4M"}',
     "huge_pages: '4M' is not one of None, 2M, 1G, Transparent"),
    ("machine_dirty_int", "PUT", "/machine-config",
     '{"vcpu_count": 2, "mem_size_mib": 64, "track_dirty_pages": 1}',
     "track_dirty_pages: expected a boolean"),
    ("machine_patch_empty", "PATCH", "/machine-config", "{}", "nothing to update"),
    ("machine_patch_unknown", "PATCH", "/machine-config", '{"cpus": 2}', "cpus: unknown field"),
    ("boot_missing_kernel", "PUT", "/boot-source", '{"boot_args": "x"}',
     "kernel_image_path: missing (required)"),
    ("boot_kernel_number", "PUT", "/boot-source", '{"kernel_image_path": 1}',
     "kernel_image_path: expected a string"),
    ("boot_kernel_empty", "PUT", "/boot-source", '{"kernel_image_path": ""}',
     "kernel_image_path: must not be empty"),
    ("boot_kernel_missing_file", "PUT", "/boot-source",
     '{"kernel_image_path": "/no/such/vmlinux"}', "No such file or directory"),
    ("boot_kernel_directory", "PUT", "/boot-source", '{"kernel_image_path": "/tmp"}',
     "kernel_image_path '/tmp'"),
    ("boot_unknown_field", "PUT", "/boot-source",
     '{"kernel_image_path": "/k", "cmdline": "x"}', "cmdline: unknown field"),
    ("drive_missing_fields", "PUT", "/drives/a", '{"drive_id": "a"}', "missing (required)"),
    ("drive_id_mismatch", "PUT", "/drives/a",
     '{"drive_id": "b", "path_on_host": "/x", "is_root_device": false}',
     "does not match the id in the path"),
    ("drive_bad_cache", "PUT", "/drives/a",
     '{"drive_id": "a", "path_on_host": "/x", "is_root_device": false, "cache_type": "None"}',
     "cache_type: 'None'"),
    ("drive_bad_engine", "PUT", "/drives/a",
     '{"drive_id": "a", "path_on_host": "/x", "is_root_device": false, "io_engine": "Uring"}',
     "io_engine: 'Uring'"),
    ("drive_rate_limiter", "PUT", "/drives/a",
     '{"drive_id": "a", "path_on_host": "/x", "is_root_device": false, "rate_limiter": {}}',
     "rate limiters are not supported"),
    ("drive_vhost_user", "PUT", "/drives/a",
     '{"drive_id": "a", "socket": "/s", "is_root_device": false}', "missing (required)"),
    ("drive_missing_file", "PUT", "/drives/a",
     '{"drive_id": "a", "path_on_host": "/no/such.img", "is_root_device": false}',
     "path_on_host '/no/such.img'"),
    ("drive_ro_string", "PUT", "/drives/a",
     '{"drive_id": "a", "path_on_host": "/x", "is_root_device": false, "is_read_only": "yes"}',
     "is_read_only: expected a boolean"),
    ("drive_bad_partuuid", "PUT", "/drives/a",
     '{"drive_id": "a", "path_on_host": "/x", "is_root_device": true, "partuuid": "1234"}',
     "partuuid: '1234'"),
    ("drive_patch_before_boot", "PATCH", "/drives/a",
     '{"drive_id": "a", "path_on_host": "/x"}', "before InstanceStart, use PUT"),
    ("net_missing_host_dev", "PUT", "/network-interfaces/eth0", '{"iface_id": "eth0"}',
     "host_dev_name: missing (required)"),
    ("net_bad_mac", "PUT", "/network-interfaces/eth0",
     '{"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "zz:00:00:00:00:00"}',
     "guest_mac: 'zz:00:00:00:00:00'"),
    ("net_multicast_mac", "PUT", "/network-interfaces/eth0",
     '{"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "03:00:00:00:00:00"}',
     "not a unicast MAC"),
    ("net_long_name", "PUT", "/network-interfaces/eth0",
     '{"iface_id": "eth0", "host_dev_name": "tap-with-a-long-name"}', "host_dev_name: too long"),
    ("net_slash_name", "PUT", "/network-interfaces/eth0",
     '{"iface_id": "eth0", "host_dev_name": "a/b"}', "not a valid interface name"),
    ("net_id_mismatch", "PUT", "/network-interfaces/eth0",
     '{"iface_id": "eth1", "host_dev_name": "tap0"}', "does not match the id in the path"),
    ("net_patch_before_boot", "PATCH", "/network-interfaces/eth0", '{"iface_id": "eth0"}',
     "use PUT"),
    ("action_missing", "PUT", "/actions", "{}", "action_type: missing (required)"),
    ("action_unknown", "PUT", "/actions", '{"action_type": "Reboot"}', "'Reboot' is not one of"),
    ("action_lowercase", "PUT", "/actions", '{"action_type": "instancestart"}',
     "is not one of"),
    ("action_number", "PUT", "/actions", '{"action_type": 3}', "expected a string"),
    ("action_extra_field", "PUT", "/actions", '{"action_type": "FlushMetrics", "payload": 1}',
     "payload: unknown field"),
    ("action_start_unconfigured", "PUT", "/actions", '{"action_type": "InstanceStart"}',
     "no kernel"),
    ("action_cad_not_started", "PUT", "/actions", '{"action_type": "SendCtrlAltDel"}',
     "has not started"),
    ("action_flush_unconfigured", "PUT", "/actions", '{"action_type": "FlushMetrics"}',
     "metrics are not configured"),
    ("vm_pause_not_started", "PATCH", "/vm", '{"state": "Paused"}', "has not started"),
    ("vm_bad_state", "PATCH", "/vm", '{"state": "Frozen"}', "not one of Paused, Resumed"),
    ("vm_state_missing", "PATCH", "/vm", '{"status": "Paused"}', "status: unknown field"),
    ("logger_bad_level", "PUT", "/logger", '{"level": "Chatty"}', "level: 'Chatty'"),
    ("logger_bad_path", "PUT", "/logger", '{"log_path": "/no/such/dir/log"}', "cannot open"),
    ("logger_module", "PUT", "/logger", '{"module": "api"}', "module"),
    ("metrics_missing_path", "PUT", "/metrics", "{}", "metrics_path: missing (required)"),
    ("metrics_bad_path", "PUT", "/metrics", '{"metrics_path": "/no/such/dir/m"}', "cannot open"),
    ("balloon_empty", "PUT", "/balloon", "{}", "amount_mib: missing (required)"),
    ("balloon_missing_oom", "PUT", "/balloon", '{"amount_mib": 1}',
     "deflate_on_oom: missing (required)"),
    ("balloon_negative", "PUT", "/balloon", '{"amount_mib": -1, "deflate_on_oom": false}',
     "amount_mib: -1 is out of range"),
    ("balloon_more_than_ram", "PUT", "/balloon", '{"amount_mib": 129, "deflate_on_oom": false}',
     "more than the guest's RAM ("),
    ("balloon_stats_range", "PUT", "/balloon",
     '{"amount_mib": 1, "deflate_on_oom": false, "stats_polling_interval_s": 65536}',
     "stats_polling_interval_s: 65536 is out of range"),
    ("balloon_hinting_on", "PUT", "/balloon",
     '{"amount_mib": 1, "deflate_on_oom": false, "free_page_hinting": true}',
     "free page hinting is not supported"),
    ("balloon_unknown_field", "PUT", "/balloon",
     '{"amount_mib": 1, "deflate_on_oom": false, "target": 1}', "target: unknown field"),
    ("balloon_get_unconfigured", "GET", "/balloon", None, "no balloon device is configured"),
    ("balloon_patch_unconfigured", "PATCH", "/balloon", '{"amount_mib": 1}',
     "no balloon device is configured"),
    ("balloon_stats_unconfigured", "GET", "/balloon/statistics", None,
     "no balloon device is configured"),
    ("balloon_stats_patch_unconfigured", "PATCH", "/balloon/statistics",
     '{"stats_polling_interval_s": 1}', "no balloon device is configured"),
    ("memory_not_paused", "GET", "/debug/memory?gpa=0&len=1", None, "paused"),
    ("memory_no_params", "GET", "/debug/memory", None, "gpa and len are required"),
    ("memory_bad_gpa", "GET", "/debug/memory?gpa=abc&len=1", None, "bad value for 'gpa'"),
    ("memory_len_zero", "GET", "/debug/memory?gpa=0&len=0", None, "len must be 1..65536"),
    ("memory_len_big", "GET", "/debug/memory?gpa=0&len=65537", None, "len must be 1..65536"),
    ("memory_dup_param", "GET", "/debug/memory?gpa=0&gpa=1&len=1", None, "given twice"),
    ("memory_unknown_param", "GET", "/debug/memory?gpa=0&len=1&fmt=x", None,
     "unknown query parameter"),
]


@pytest.mark.parametrize("name,method,path,body,text", BODIES, ids=[c[0] for c in BODIES])
def test_bad_requests_get_400(idle, name, method, path, body, text):
    data = body.encode() if isinstance(body, str) else body
    out = idle.raw(_req(method, path, data) + b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
    statuses = all_statuses(out)
    assert statuses[:1] == [400], out[:400]
    fault = json.loads(out.partition(b"\r\n\r\n")[2].split(b"HTTP/1.1")[0])["fault_message"]
    assert text in fault
    # Only framing errors close the connection: the pipelined GET / is served.
    assert statuses == [400, 200], statuses
    assert idle.state() == "Not started"


def test_pipelined_garbage(idle):
    out = idle.raw(b"GET / HTTP/1.1\r\n\r\nGET /version HTTP/1.1\r\n\r\n\x16\x03\x01garbage\r\n\r\n")
    assert all_statuses(out) == [200, 200, 400]
    assert idle.get("/").status == 200


def test_slow_body(idle):
    out = idle.raw(b"", chunks=[b"PUT /vm HTTP/1.1\r\nContent-Length: 20\r\n\r\n{\"st"], timeout=3)
    assert parse_status(out) == 408
    assert idle.get("/").status == 200


def test_malformed_count():
    assert len(FRAMING) + len(ROUTING) + len(BODIES) >= 100


# ---- configure and start through the socket ----

def configure_counter(v, guest, cpus=1, mem=64):
    assert v.put("/boot-source", {"kernel_image_path": str(guest["elf"]),
                                  "boot_args": "guest.test=counter"}).status == 204
    assert v.put("/machine-config", {"vcpu_count": cpus, "mem_size_mib": mem}).status == 204


def test_configure_and_start_through_the_socket(api, guest):
    v = api("--debug-exit")
    assert v.put("/boot-source", {"kernel_image_path": str(guest["elf"]),
                                  "boot_args": "guest.test=e820 guest.expect_mem_mib=96"}
                 ).status == 204
    r = v.put("/machine-config", {"vcpu_count": 2, "mem_size_mib": 96, "smt": False,
                                  "track_dirty_pages": False, "huge_pages": "None"})
    assert r.status == 204, r.fault
    cfg = v.get("/vm/config").json
    assert cfg["machine-config"] == {"vcpu_count": 2, "mem_size_mib": 96, "smt": False,
                                     "track_dirty_pages": False, "huge_pages": "None"}
    assert cfg["boot-source"]["boot_args"] == "guest.test=e820 guest.expect_mem_mib=96"
    assert v.state() == "Not started"
    r = v.put("/actions", {"action_type": "InstanceStart"})
    assert r.status == 204, r.fault
    assert v.wait_exit() == vmmrun.EXIT_OK
    assert any(l == "TEST e820 PASS" for _, l in v.lines)


def test_post_boot_rules(api, guest):
    v = start_counter(api, guest)
    assert v.state() == "Running"
    r = v.put("/boot-source", {"kernel_image_path": str(guest["elf"])})
    assert r.status == 400
    assert r.fault == ("the microVM is running: boot-source can only be set before "
                       "InstanceStart")
    r = v.put("/machine-config", {"vcpu_count": 1, "mem_size_mib": 64})
    assert r.status == 400 and "before InstanceStart" in r.fault
    r = v.patch("/machine-config", {"mem_size_mib": 64})
    assert r.status == 400
    r = v.put("/network-interfaces/eth0", {"iface_id": "eth0", "host_dev_name": "tap0"})
    assert r.status == 400
    r = v.put("/actions", {"action_type": "InstanceStart"})
    assert r.status == 400 and "already running" in r.fault
    assert v.get("/machine-config").status == 200
    assert v.stop() == vmmrun.EXIT_SIGNAL


def test_start_with_a_bad_kernel_keeps_waiting(api, guest, tmp_path):
    junk = tmp_path / "junk"
    junk.write_bytes(b"not a kernel at all\n" * 100)
    v = api()
    assert v.put("/boot-source", {"kernel_image_path": str(junk)}).status == 204
    r = v.put("/actions", {"action_type": "InstanceStart"})
    assert r.status == 400
    assert "not an ELF64 x86-64 image or a bzImage" in r.fault
    assert v.state() == "Not started"
    configure_counter(v, guest)
    assert v.put("/actions", {"action_type": "InstanceStart"}).status == 204
    v.wait_line("COUNTER 1 ")
    assert v.state() == "Running"


needs_netns = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists("/dev/net/tun") or not shutil.which("ip"),
    reason="needs root, /dev/net/tun and iproute2 (a network namespace)")


@pytest.fixture
def netns():
    """A network namespace of our own: the tap the VMM creates lives and dies
    in there, never on the host."""
    name = f"vmmapi{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    yield name
    subprocess.run(["ip", "netns", "del", name], capture_output=True)


@needs_netns
def test_network_interface_through_the_api(api, guest, netns):
    v = api(prefix=("ip", "netns", "exec", netns))
    configure_counter(v, guest)
    iface = {"iface_id": "eth0", "host_dev_name": "vmmapi0", "guest_mac": "06:00:ac:10:00:02"}
    r = v.put("/network-interfaces/eth0", iface)
    assert r.status == 204, r.fault
    r = v.put("/network-interfaces/eth1", {"iface_id": "eth1", "host_dev_name": "vmmapi0"})
    assert r.status == 400 and "already used by interface 'eth0'" in r.fault
    assert v.get("/vm/config").json["network-interfaces"] == [iface]
    r = v.put("/actions", {"action_type": "InstanceStart"})
    assert r.status == 204, r.fault
    v.wait_line("COUNTER 1 ")
    devices = v.get("/vm/info").json["devices"]
    assert [d.get("iface_id") for d in devices if d["name"].startswith("virtio-net")] == ["eth0"]
    link = subprocess.run(["ip", "netns", "exec", netns, "ip", "link", "show", "vmmapi0"],
                          capture_output=True, text=True)
    assert link.returncode == 0, "the VMM did not create the tap it was given"
    # Per-NIC counters reach the metrics (this guest never uses its NIC).
    path = os.path.join(v.dir, "metrics.json")
    assert v.put("/metrics", {"metrics_path": path}).status == 204
    assert v.put("/actions", {"action_type": "FlushMetrics"}).status == 204
    m = json.loads(pathlib.Path(path).read_text().splitlines()[-1])
    assert [n["iface_id"] for n in m["net"]] == ["eth0"]
    assert m["net"][0]["tx_packets"] == 0 and m["net"][0]["tx_dropped_malformed"] == 0
    # After boot: only rate limiters could change, and there are none yet.
    r = v.patch("/network-interfaces/eth0", {"iface_id": "eth0", "rx_rate_limiter": {}})
    assert r.status == 400 and "rate limiters are not supported" in r.fault
    r = v.patch("/network-interfaces/eth9", {"iface_id": "eth9"})
    assert r.status == 400 and "no network interface" in r.fault
    assert v.stop() == vmmrun.EXIT_SIGNAL


def test_fatal_start_failure_exits_with_its_status(api, guest):
    v = api(env={"VMM_TEST_MISSING_CAP": "KVM_CAP_PIT2"})
    configure_counter(v, guest)
    r = v.put("/actions", {"action_type": "InstanceStart"})
    assert r.status == 400
    assert "KVM_CAP_PIT2" in r.fault and "exits" in r.fault
    assert v.wait_exit() == vmmrun.EXIT_KVM_CAP


def test_kernel_on_the_command_line_boots_at_once(api, guest):
    v = start_counter(api, guest)
    assert v.state() == "Running"
    info = v.get("/vm/info").json
    assert info["state"] == "Running"
    assert info["ram_bytes"] == 128 * MIB
    assert [c["state"] for c in info["vcpus"]] == ["running"]


def test_track_dirty_pages(api, guest):
    v = api("--debug-exit")
    assert v.put("/boot-source", {"kernel_image_path": str(guest["elf"]),
                                  "boot_args": "guest.test=memtest"}).status == 204
    r = v.put("/machine-config", {"vcpu_count": 1, "mem_size_mib": 32, "track_dirty_pages": True})
    assert r.status == 204, r.fault
    assert v.get("/machine-config").json["track_dirty_pages"] is True
    assert v.put("/actions", {"action_type": "InstanceStart"}).status == 204
    assert v.wait_exit(timeout=60) == vmmrun.EXIT_OK, v.stderr
    assert any(l == "TEST memtest PASS" for _, l in v.lines)


# ---- pause / resume ----

def _pause_resume(v):
    r = v.patch("/vm", {"state": "Paused"})
    assert r.status == 204, r.fault
    assert v.state() == "Paused"
    assert all(c["state"] == "paused" for c in v.get("/vm/info").json["vcpus"])
    time.sleep(0.15)  # lines printed before the pause may still be in the pipe
    frozen = v.counters()
    time.sleep(0.6)
    assert v.counters() == frozen, "the counter advanced while paused"
    r = v.patch("/vm", {"state": "Resumed"})
    assert r.status == 204, r.fault
    assert v.state() == "Running"
    end = time.monotonic() + 5
    while time.monotonic() < end and len(v.counters()) < len(frozen) + 3:
        time.sleep(0.02)
    after = v.counters()
    assert len(after) >= len(frozen) + 3, "the counter did not go on after resume"
    assert after == list(range(len(after))), "lines lost or repeated"


@pytest.mark.parametrize("cpus", [1, 2])
def test_pause_resume_stops_the_counter(api, guest, cpus):
    v = start_counter(api, guest, cpus=cpus)
    _pause_resume(v)
    _pause_resume(v)
    # Idempotent requests.
    assert v.patch("/vm", {"state": "Resumed"}).status == 204
    assert v.patch("/vm", {"state": "Paused"}).status == 204
    assert v.patch("/vm", {"state": "Paused"}).status == 204
    # A paused VM still stops cleanly on SIGTERM.
    assert v.stop() == vmmrun.EXIT_SIGNAL


def test_pause_configured_through_the_socket(api, guest):
    v = api()
    configure_counter(v, guest, cpus=2)
    assert v.put("/actions", {"action_type": "InstanceStart"}).status == 204
    v.wait_line("COUNTER 2 ")
    _pause_resume(v)


def test_debug_memory_reads_the_kernel_image(api, guest):
    v = start_counter(api, guest)
    r = v.get("/debug/memory?gpa=0x100000&len=64")
    assert r.status == 400 and "paused" in r.fault
    assert v.patch("/vm", {"state": "Paused"}).status == 204
    r = v.get("/debug/memory?gpa=0x100000&len=64")
    assert r.status == 200, r.fault
    data = bytes.fromhex(r.json["data"])
    assert data == _elf_segment_bytes(guest["elf"], 0x100000, 64)
    r64 = v.get("/debug/memory?gpa=1048576&len=64&encoding=base64")
    import base64
    assert base64.b64decode(r64.json["data"]) == data
    r = v.get("/debug/memory?gpa=0x%x&len=16" % (128 * MIB - 8))
    assert r.status == 400 and "not guest RAM" in r.fault
    r = v.get("/debug/memory?gpa=0&len=65536")
    assert r.status == 200 and len(r.json["data"]) == 2 * 65536


def _elf_segment_bytes(path, paddr, length):
    data = pathlib.Path(path).read_bytes()
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        p_type, _, p_offset, _, p_paddr, p_filesz = struct.unpack_from(
            "<IIQQQQ", data, phoff + i * phentsize)
        if p_type == 1 and p_paddr <= paddr < p_paddr + p_filesz:
            off = p_offset + paddr - p_paddr
            return data[off:off + length]
    raise AssertionError("no PT_LOAD at that address")


# ---- actions, metrics, logger ----

def test_send_ctrl_alt_del(api, guest):
    v = start_counter(api, guest)
    assert v.put("/actions", {"action_type": "SendCtrlAltDel"}).status == 204
    # The counter guest never reads the keyboard: the next one must wait.
    r = v.put("/actions", {"action_type": "SendCtrlAltDel"})
    assert r.status == 400 and "not yet read" in r.fault
    assert v.state() == "Running"


def test_metrics(api, guest):
    v = start_counter(api, guest, env={"VMM_METRICS_PERIOD_MS": "200"})
    path = os.path.join(v.dir, "metrics.json")
    assert v.put("/metrics", {"metrics_path": path}).status == 204
    r = v.put("/metrics", {"metrics_path": path})
    assert r.status == 400 and "already configured" in r.fault
    assert v.put("/actions", {"action_type": "FlushMetrics"}).status == 204
    time.sleep(0.5)
    lines = [json.loads(l) for l in pathlib.Path(path).read_text().splitlines()]
    assert len(lines) >= 2, "FlushMetrics plus the periodic flush"
    m = lines[-1]
    assert m["api_server"]["requests"] >= 3
    assert m["vcpu"][0]["total"] > 0 and m["vcpu"][0]["io"] > 0
    assert m["utc_timestamp_ms"] > 1.6e12
    assert v.get("/vm/config").json["metrics"] == {"metrics_path": path}


def test_logger(api):
    v = api()
    path = os.path.join(v.dir, "vmm.log")
    r = v.put("/logger", {"log_path": path, "level": "Debug", "show_level": True,
                          "show_log_origin": False})
    assert r.status == 204, r.fault
    v.get("/nope")
    text = pathlib.Path(path).read_text()
    assert "vmm: [Debug] api: GET /nope -> 404" in text
    assert v.get("/vm/config").json["logger"] == {"log_path": path, "level": "Debug",
                                                   "show_level": True, "show_log_origin": False}
    assert v.put("/logger", {"level": "Error"}).status == 204
    v.get("/nope2")
    assert "nope2" not in pathlib.Path(path).read_text()


# ---- drives ----

def _image(path, size=8 * MIB):
    with open(path, "wb") as f:
        f.truncate(size)
    return str(path)


def test_drive_through_the_api_boots_the_blk_test(api, guest, tmp_path):
    img = _image(tmp_path / "disk.img")
    v = api("--debug-exit")
    assert v.put("/boot-source", {"kernel_image_path": str(guest["elf"]),
                                  "boot_args": "guest.test=blk guest.blk_serial=api-disk"}
                 ).status == 204
    r = v.put("/drives/data", {"drive_id": "data", "path_on_host": img, "is_root_device": False,
                               "is_read_only": False, "cache_type": "Writeback",
                               "io_engine": "Sync", "serial": "api-disk"})
    assert r.status == 204, r.fault
    assert v.put("/actions", {"action_type": "InstanceStart"}).status == 204
    assert v.wait_exit(timeout=60) == vmmrun.EXIT_OK, v.stderr
    assert any(l == "TEST blk PASS" for _, l in v.lines), v.lines[-5:]


def test_root_drive_goes_first_and_on_the_command_line(api, guest, tmp_path):
    a, b = _image(tmp_path / "a.img"), _image(tmp_path / "b.img", 4 * MIB)
    v = api()
    assert v.put("/boot-source", {"kernel_image_path": str(guest["elf"]),
                                  "boot_args": "guest.test=cmdline"}).status == 204
    assert v.put("/drives/data", {"drive_id": "data", "path_on_host": a,
                                  "is_root_device": False}).status == 204
    assert v.put("/drives/root", {"drive_id": "root", "path_on_host": b, "is_root_device": True,
                                  "is_read_only": True}).status == 204
    r = v.put("/drives/data", {"drive_id": "data", "path_on_host": a, "is_root_device": True})
    assert r.status == 400 and "a root device is already configured" in r.fault
    assert [d["drive_id"] for d in v.get("/vm/config").json["drives"]] == ["root", "data"]
    assert v.put("/actions", {"action_type": "InstanceStart"}).status == 204
    assert v.wait_exit() == vmmrun.EXIT_OK
    line = next(l for _, l in v.lines if l.startswith("CMDLINE "))
    assert "guest.test=cmdline root=/dev/vda ro virtio_mmio.device=4K@0xd0000000:5" in line


def test_patch_drive_swaps_the_backing_file(api, guest, tmp_path):
    a, b = _image(tmp_path / "a.img"), _image(tmp_path / "b.img", 16 * MIB)
    v = start_counter(api, guest, extra=("--disk", a))
    drives = v.get("/vm/config").json["drives"]
    assert drives[0]["drive_id"] == "disk0" and drives[0]["path_on_host"] == a
    r = v.patch("/drives/disk0", {"drive_id": "disk0", "path_on_host": str(tmp_path / "none")})
    assert r.status == 400 and "No such file" in r.fault
    r = v.patch("/drives/nope", {"drive_id": "nope", "path_on_host": b})
    assert r.status == 400 and "no drive" in r.fault
    r = v.patch("/drives/disk0", {"drive_id": "disk0", "path_on_host": b})
    assert r.status == 204, r.fault
    assert v.get("/vm/config").json["drives"][0]["path_on_host"] == b
    info = v.get("/vm/info").json
    assert info["devices"][0]["drive_id"] == "disk0"
    assert info["devices"][0]["mmio_base"] == "0xd0000000"
    # The old image is no longer locked by this VMM: another can take it.
    import fcntl
    with open(a, "r+b") as f:
        fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    assert v.state() == "Running"


# ---- config file ----

def _config(guest, test="hello", **over):
    cfg = {
        "boot-source": {"kernel_image_path": str(guest["elf"]), "boot_args": f"guest.test={test}"},
        "machine-config": {"vcpu_count": 1, "mem_size_mib": 64},
        "vmm-options": {"console": "stdio", "debug_exit": True},
    }
    cfg.update(over)
    return cfg


def test_config_file_boots_without_api(vmm_bin, guest, tmp_path):
    f = tmp_path / "vm.json"
    f.write_text(json.dumps(_config(guest, "e820 guest.expect_mem_mib=64")))
    r = vmmrun.run(vmm_bin, ["--config-file", f])
    assert r.status == vmmrun.EXIT_OK, r.stderr
    assert "TEST e820 PASS" in r.stdout


def test_config_file_with_api_serves_runtime_requests(api, guest, tmp_path):
    f = tmp_path / "vm.json"
    f.write_text(json.dumps(_config(guest, "counter")))
    v = api("--config-file", f)
    v.wait_line("COUNTER 1 ")
    assert v.state() == "Running"
    assert v.get("/vm/config").json["boot-source"]["boot_args"] == "guest.test=counter"
    _pause_resume(v)


def test_vm_config_round_trips_through_a_file(api, vmm_bin, guest, tmp_path):
    img = _image(tmp_path / "d.img")
    v = api("--debug-exit")
    assert v.put("/boot-source", {"kernel_image_path": str(guest["elf"]),
                                  "boot_args": "guest.test=blk_range guest.blk_sectors=16384"}
                 ).status == 204
    assert v.patch("/machine-config", {"mem_size_mib": 80}).status == 204
    assert v.put("/drives/d", {"drive_id": "d", "path_on_host": img, "is_root_device": False,
                               "io_engine": "Sync"}).status == 204
    exported = v.get("/vm/config").json
    v.stop()
    f = tmp_path / "exported.json"
    f.write_text(json.dumps(exported))
    r = vmmrun.run(vmm_bin, ["--config-file", f])
    assert r.status == vmmrun.EXIT_OK, r.stderr
    assert "TEST blk_range PASS" in r.stdout


@pytest.mark.parametrize("content,expect", [
    ("{", ":1:"),
    ("[]", "the configuration must be a JSON object"),
    ('{"machine-config": {"vcpu_count": "2", "mem_size_mib": 64}}',
     "machine-config.vcpu_count: expected an integer"),
    ('{"drives": [{"drive_id": "a", "path_on_host": "/x", "is_root_device": false, "x": 1}]}',
     "drives[0].x: unknown field"),
    ('{"balloon": {"amount_mib": 1}}', "balloon.deflate_on_oom: missing (required)"),
    ('{"vsock": {}}', "vsock: not supported"),
    ('{"network-interfaces": [{"iface_id": "e", "host_dev_name": "tap0", "guest_mac": "ff:ff:ff:ff:ff:ff"}]}',
     "network-interfaces[0].guest_mac: 'ff:ff:ff:ff:ff:ff' is not a unicast MAC"),
])
def test_bad_config_file(vmm_bin, tmp_path, content, expect):
    f = tmp_path / "bad.json"
    f.write_text(content)
    r = vmmrun.run(vmm_bin, ["--config-file", f], timeout=10)
    assert r.status == vmmrun.EXIT_USAGE
    assert expect in r.stderr
    assert str(f) in r.stderr


def test_missing_config_file(vmm_bin, tmp_path):
    r = vmmrun.run(vmm_bin, ["--config-file", tmp_path / "none.json"], timeout=10)
    assert r.status == vmmrun.EXIT_USAGE
    assert "none.json" in r.stderr


# ---- vmm ctl ----

def ctl(vmm_bin, *args):
    return subprocess.run([str(vmm_bin), "ctl", *map(str, args)], capture_output=True,
                          text=True, timeout=30)


def test_ctl_client(api, vmm_bin, guest):
    v = api()
    r = ctl(vmm_bin, "--api-sock", v.sock, "get")
    assert r.returncode == 0 and json.loads(r.stdout)["state"] == "Not started"
    r = ctl(vmm_bin, "--api-sock", v.sock, "pause")
    assert r.returncode == 1 and "has not started" in r.stderr
    r = ctl(vmm_bin, "--api-sock", v.sock, "raw", "PUT", "/boot-source",
            json.dumps({"kernel_image_path": str(guest["elf"]),
                        "boot_args": "guest.test=counter"}))
    assert r.returncode == 0, r.stderr
    assert ctl(vmm_bin, "--api-sock", v.sock, "start").returncode == 0
    v.wait_line("COUNTER 1 ")
    assert ctl(vmm_bin, "--api-sock", v.sock, "pause").returncode == 0
    assert json.loads(ctl(vmm_bin, "--api-sock", v.sock, "info").stdout)["state"] == "Paused"
    assert ctl(vmm_bin, "--api-sock", v.sock, "resume").returncode == 0
    cfg = json.loads(ctl(vmm_bin, "--api-sock", v.sock, "config").stdout)
    assert cfg["boot-source"]["boot_args"] == "guest.test=counter"
    r = ctl(vmm_bin, "--api-sock", v.sock, "raw", "GET", "/nope")
    assert r.returncode == 1 and "404" in r.stderr


def test_ctl_usage_and_no_server(vmm_bin):
    assert ctl(vmm_bin).returncode == 2
    assert ctl(vmm_bin, "--api-sock", "/tmp/x", "frobnicate").returncode == 2
    assert ctl(vmm_bin, "--api-sock", "/tmp/x", "raw", "get", "/").returncode == 2
    r = ctl(vmm_bin, "--help")
    assert r.returncode == 0 and "raw METHOD PATH" in r.stdout
    r = ctl(vmm_bin, "--api-sock", "/tmp/vmm-no-such.sock", "get")
    assert r.returncode == 3 and "cannot connect" in r.stderr
