#!/usr/bin/env python3
"""Write the seed corpus for fuzz_http (tests/fuzz/corpus/http/).

Each seed is a byte stream of one or more requests as a client would send
them: every endpoint with a valid body, pipelined requests, and the
framing cases the parser refuses. Run it again after changing the API; the
files are checked in.
"""
import json
import pathlib

OUT = pathlib.Path(__file__).resolve().parent / "corpus" / "http"


def req(method, path, body=None, headers=()):
    head = [f"{method} {path} HTTP/1.1", "Host: localhost"] + list(headers)
    data = b""
    if body is not None:
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        head.append(f"Content-Length: {len(data)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + data


FULL = {
    "boot-source": {"kernel_image_path": "/k", "boot_args": "console=ttyS0", "initrd_path": "/i"},
    "machine-config": {"vcpu_count": 2, "mem_size_mib": 256, "smt": False,
                       "track_dirty_pages": True, "huge_pages": "None"},
    "drives": [{"drive_id": "rootfs", "path_on_host": "/r", "is_root_device": True,
                "is_read_only": False, "cache_type": "Writeback", "io_engine": "Async",
                "partuuid": "0eaa91a0-01de-4d9a-9f3b-0123456789ab", "serial": "S"}],
    "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "tap0",
                            "guest_mac": "02:00:00:00:00:01"}],
    "logger": {"log_path": "/l", "level": "Info", "show_level": True, "show_log_origin": True},
    "metrics": {"metrics_path": "/m"},
    "vmm-options": {"console": "none", "debug_exit": True},
}

SEEDS = {
    "get_root": req("GET", "/"),
    "get_version": req("GET", "/version"),
    "get_machine": req("GET", "/machine-config"),
    "get_vm_config": req("GET", "/vm/config"),
    "get_vm_info": req("GET", "/vm/info"),
    "get_memory": req("GET", "/debug/memory?gpa=0x1000&len=64&encoding=base64"),
    "put_boot_source": req("PUT", "/boot-source", FULL["boot-source"]),
    "put_machine": req("PUT", "/machine-config", FULL["machine-config"]),
    "patch_machine": req("PATCH", "/machine-config", {"mem_size_mib": 512}),
    "put_drive": req("PUT", "/drives/rootfs", FULL["drives"][0]),
    "patch_drive": req("PATCH", "/drives/rootfs", {"drive_id": "rootfs", "path_on_host": "/n"}),
    "put_net": req("PUT", "/network-interfaces/eth0", FULL["network-interfaces"][0]),
    "put_actions": req("PUT", "/actions", {"action_type": "InstanceStart"}),
    "patch_vm": req("PATCH", "/vm", {"state": "Paused"}),
    "put_logger": req("PUT", "/logger", FULL["logger"]),
    "put_metrics": req("PUT", "/metrics", FULL["metrics"]),
    "full_config_body": req("PUT", "/machine-config", FULL),
    "pipelined": req("GET", "/") + req("PATCH", "/vm", {"state": "Resumed"}) + req("GET", "/vm"),
    "keepalive_10": b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    "expect_continue": req("PUT", "/metrics", FULL["metrics"], ["Expect: 100-continue"]),
    "chunked": b"PUT /vm HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "dup_length": b"PUT /vm HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
    "bare_lf": b"GET / HTTP/1.1\nHost: x\n\n",
    "folded": b"GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n",
    "bad_json": req("PUT", "/vm", '{"state": "Paused",}'),
    "bad_utf8": req("PUT", "/vm", b'{"state": "\xff"}'.decode("latin-1")),
    "http2": b"GET / HTTP/2.0\r\n\r\n",
    "garbage_after": req("GET", "/") + b"\x00\x01garbage\r\n\r\n",
}


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for name, data in SEEDS.items():
        (OUT / name).write_bytes(data)


if __name__ == "__main__":
    main()
