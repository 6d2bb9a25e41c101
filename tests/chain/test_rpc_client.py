"""The harness's one JSON-RPC client (harness.chain.rpc.Rpc) over HTTP, against small local servers that
misbehave on purpose: stale keep-alive connections, a reset before the reply, HTTP errors, whole-batch
errors, credentials in the URL, and one client shared by threads. (Against anvil and the node it is
exercised by every chain and rollup test.)"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness.chain.rpc import Rpc, RpcError, RpcTransportError, rpc_call


class _Server:
    """A JSON-RPC server on 127.0.0.1 (OS-assigned port): ``mode`` picks its behaviour; counts requests."""

    def __init__(self, mode: str = "ok") -> None:
        self.mode, self.requests, self.auth = mode, 0, []
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = 1 << 16  # headers and body in one send (no delayed-ACK stall in this test server)

            def log_message(self, *a) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests += 1
                outer.auth.append(self.headers.get("Authorization"))
                if outer.mode == "reset":  # read the request, then drop the connection without a reply
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                if outer.mode == "http500":
                    return self._send(500, b"upstream down")
                if outer.mode == "batch_error" and isinstance(body, list):
                    return self._send(200, json.dumps({"jsonrpc": "2.0", "id": None,
                                                       "error": {"code": -32600, "message": "batch too large"}}).encode())

                def one(r: dict) -> dict:
                    if r["method"] == "echo":
                        return {"jsonrpc": "2.0", "id": r["id"], "result": r["params"]}
                    return {"jsonrpc": "2.0", "id": r["id"], "error": {"code": -32601, "message": "method not found",
                                                                       "data": r["method"]}}

                reply = [one(r) for r in reversed(body)] if isinstance(body, list) else one(body)  # batch: any order
                self._send(200, json.dumps(reply).encode())
                if outer.mode == "close_after_reply":  # keep-alive reply, then the server closes (idle timeout)
                    self.close_connection = True

            def _send(self, status: int, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def __enter__(self) -> _Server:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_calls_batches_and_error_replies() -> None:
    with _Server() as srv, Rpc(srv.url) as rpc:
        assert rpc.call("echo", [1, "a"]) == [1, "a"]
        with pytest.raises(RpcError) as ei:
            rpc.call("nope")
        assert (ei.value.method, ei.value.code, ei.value.message, ei.value.data) == ("nope", -32601,
                                                                                      "method not found", "nope")
        # replies come back in any order: matched by id, returned in call order
        assert rpc.batch([("echo", [i]) for i in range(5)]) == [[i] for i in range(5)]
        raw = rpc.batch_raw([("echo", [1]), ("nope", [])])
        assert raw[0]["result"] == [1] and raw[1]["error"]["code"] == -32601
        with pytest.raises(RpcError, match="nope"):
            rpc.batch([("echo", [1]), ("nope", [])])
        assert rpc_call(srv.url, "echo", ["x"]) == ["x"]


def test_idle_connection_the_server_closed_is_replaced_before_sending() -> None:
    with _Server("close_after_reply") as srv, Rpc(srv.url) as rpc:
        for i in range(5):  # the server closes every connection after its reply (a keep-alive timeout)
            assert rpc.call("echo", [i]) == [i]
            time.sleep(0.05)  # idle: the server's close has arrived
        assert srv.requests == 5  # none sent twice


def test_reset_before_reply_is_a_transport_error_and_not_resent() -> None:
    with _Server("reset") as srv, Rpc(srv.url) as rpc:
        with pytest.raises(RpcTransportError):
            rpc.call("echo", [1])
        assert srv.requests == 1  # a fresh connection's request is never sent again (it may have been applied)


def test_http_status_and_whole_batch_errors() -> None:
    with _Server("http500") as srv, Rpc(srv.url) as rpc:
        with pytest.raises(RpcTransportError, match="HTTP 500"):
            rpc.call("echo", [])
        assert isinstance(RpcTransportError("x"), ConnectionError)
    with _Server("batch_error") as srv, Rpc(srv.url) as rpc:
        reps = rpc.batch_raw([("echo", [1]), ("echo", [2])])
        assert [r["error"]["message"] for r in reps] == ["batch too large"] * 2


def test_refused_connection_is_a_transport_error() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(RpcTransportError), Rpc(f"http://127.0.0.1:{port}", timeout_s=2) as rpc:
        rpc.call("echo", [])


def test_credentials_in_the_url_become_basic_auth() -> None:
    with _Server() as srv:
        url = srv.url.replace("http://", "http://alice:s%40cret@")
        assert rpc_call(url, "echo", [1]) == [1]
        assert srv.auth[-1] == "Basic " + base64.b64encode(b"alice:s@cret").decode()


def test_one_client_shared_by_threads() -> None:
    with _Server() as srv:
        rpc = Rpc(srv.url)
        errors: list = []

        def work(k: int) -> None:
            try:
                for i in range(40):
                    assert rpc.call("echo", [k, i]) == [k, i]
                    assert rpc.batch([("echo", [k, i, j]) for j in range(3)]) == [[k, i, j] for j in range(3)]
            except Exception as e:  # noqa: BLE001
                errors.append(e)
            finally:
                rpc.close()  # this thread's connection

        threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert srv.requests == 8 * 40 * 2


def test_bad_endpoints_are_refused_up_front() -> None:
    for bad in ("127.0.0.1:8545", "ftp://x", ""):
        with pytest.raises(ValueError, match="RPC URL"):
            Rpc(bad)
