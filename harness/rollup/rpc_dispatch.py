"""The node's JSON-RPC dispatch, independent of the transport (rpc_server.py serves it over HTTP and
WebSocket): single and batch requests.

JSON-RPC 2.0 as specified: a request must carry ``"jsonrpc": "2.0"``; a request without an ``id``
member is a notification: it is executed and gets no reply (the HTTP transport answers a body of
notifications only with an empty 204). ``eth_subscribe`` / ``eth_unsubscribe`` are served by the
WebSocket transport (per connection); over HTTP they are refused with a message saying so.

Block tags: ``safe`` / ``finalized`` (and ZKsync's ``l1_committed`` = ``safe``) in any block-tag
parameter of a proxied method (including EIP-1898 ``{"blockNumber": ...}`` objects and the
``fromBlock``/``toBlock`` of log filters) are replaced by the block number the node's L1 settlement gives
them (``tag_resolver``), so they never reach the L2 engine, whose own ``safe``/``finalized`` are unrelated
to L1.

Error codes (JSON-RPC 2.0): -32700 parse error, -32600 invalid request,
-32601 method not found, -32602 invalid params, -32603 internal error,
-32000 server/tx errors (the engine's own codes are passed through for
proxied methods). A handler failure is an error reply, never a crash.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from harness.chain.rpc import RpcError
from harness.rollup.sequencer import TxRejected

log = logging.getLogger("rollup.rpc")

MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_BATCH = 5_000

# read-only eth_* methods passed straight to the L2 engine
PROXIED = frozenset({
    "eth_chainId", "net_version", "net_listening", "eth_blockNumber", "eth_getBalance", "eth_getTransactionCount",
    "eth_gasPrice", "eth_maxPriorityFeePerGas", "eth_feeHistory", "eth_estimateGas", "eth_call", "eth_getCode",
    "eth_getStorageAt", "eth_getBlockByNumber", "eth_getBlockByHash", "eth_getTransactionByHash",
    "eth_getTransactionReceipt", "eth_getLogs", "eth_syncing", "eth_accounts", "eth_blobBaseFee",
    "eth_getBlockTransactionCountByNumber", "eth_getBlockTransactionCountByHash", "eth_getBlockReceipts",
    "eth_getTransactionByBlockNumberAndIndex", "eth_getTransactionByBlockHashAndIndex", "eth_createAccessList",
    "eth_getProof", "eth_mining", "eth_hashrate", "eth_protocolVersion", "eth_coinbase",
    "eth_newFilter", "eth_newBlockFilter", "eth_newPendingTransactionFilter", "eth_getFilterChanges",
    "eth_getFilterLogs", "eth_uninstallFilter",
})
#: position of the block-tag parameter of proxied methods (eth_getLogs / eth_newFilter: a filter object)
TAG_PARAM = {
    "eth_getBlockByNumber": 0, "eth_getBlockTransactionCountByNumber": 0, "eth_getBlockReceipts": 0,
    "eth_getTransactionByBlockNumberAndIndex": 0, "eth_getBalance": 1, "eth_getTransactionCount": 1,
    "eth_getCode": 1, "eth_call": 1, "eth_estimateGas": 1, "eth_createAccessList": 1, "eth_feeHistory": 1,
    "eth_getStorageAt": 2, "eth_getProof": 2,
}
FILTER_METHODS = frozenset({"eth_getLogs", "eth_newFilter"})
SETTLEMENT_TAGS = {"safe": "safe", "finalized": "finalized", "l1_committed": "safe"}
NEEDS_WS = ("{method} needs a subscription transport: connect over WebSocket (ws://, same host and port); "
            "over HTTP poll eth_blockNumber, or use eth_newBlockFilter + eth_getFilterChanges")
REFUSED = {
    "eth_sendTransaction": "unsigned transactions are not accepted: sign locally and use eth_sendRawTransaction",
    "eth_sign": "this node holds no keys",
    "eth_signTransaction": "this node holds no keys",
}


def _is_notification(req: Any) -> bool:
    """A JSON-RPC 2.0 notification: a well-formed request object without an ``id`` member."""
    return (isinstance(req, dict) and "id" not in req and req.get("jsonrpc") == "2.0"
            and isinstance(req.get("method"), str) and bool(req.get("method")))


def _sha3(id_: Any, params: list) -> dict:
    """web3_sha3: keccak-256 of the 0x-hex data in params[0]."""
    from harness.rollup.merkle import keccak

    if len(params) != 1 or not isinstance(params[0], str) or not params[0].startswith(("0x", "0X")):
        return _err(id_, -32602, 'invalid params: expected ["0x<hex data>"]')
    try:
        data = bytes.fromhex(params[0][2:])
    except ValueError:
        return _err(id_, -32602, "invalid params: data is not hex")
    return {"jsonrpc": "2.0", "id": id_, "result": "0x" + keccak(data).hex()}


class InvalidParams(ValueError):
    """Raised by a handler for wrong params (-> -32602)."""


def _err(id_: Any, code: int, message: str, data: Any = None) -> dict:
    e: dict = {"code": code, "message": message}
    if data is not None:
        e["data"] = data
    return {"jsonrpc": "2.0", "id": id_, "error": e}


def proxied_reply(id_: Any, rep: dict) -> dict:
    """The reply to a proxied call from the engine's reply object (its errors passed through)."""
    if "error" in rep:
        e = rep["error"] if isinstance(rep["error"], dict) else {"message": str(rep["error"])}
        return _err(id_, e.get("code", -32000), e.get("message", ""), e.get("data"))
    return {"jsonrpc": "2.0", "id": id_, "result": rep.get("result")}


def engine_unavailable(n: int, e: BaseException) -> list[dict]:
    return [{"error": {"code": -32603, "message": f"L2 engine unavailable: {e}"}}] * n


def _valid_id(id_: Any) -> bool:
    """A JSON-RPC 2.0 id: a string, a number (not a boolean) or null."""
    return isinstance(id_, (str, int, float, type(None))) and not isinstance(id_, bool)


def _is_settlement_tag(tag: Any) -> bool:
    if isinstance(tag, dict):
        tag = tag.get("blockNumber")
    return isinstance(tag, str) and tag in SETTLEMENT_TAGS


def _map_tags(method: str, params: list, fn: Callable[[Any], Any]) -> list:
    """``params`` with ``fn`` applied to each block-tag parameter of ``method`` (the one TAG_PARAM names,
    or a filter's fromBlock / toBlock); a new list when there is one, ``params`` itself when not."""
    i = TAG_PARAM.get(method)
    if i is not None and len(params) > i:
        params = list(params)
        params[i] = fn(params[i])
    elif method in FILTER_METHODS and params and isinstance(params[0], dict):
        f = dict(params[0])
        for k in ("fromBlock", "toBlock"):
            if k in f:
                f[k] = fn(f[k])
        params = [f, *params[1:]]
    return params


def _has_settlement_tag(method: str, params: list) -> bool:
    """Whether any block-tag parameter of the call is a settlement tag (the same walk as rewrite_tags)."""
    found = False

    def see(tag: Any) -> Any:
        nonlocal found
        found = found or _is_settlement_tag(tag)
        return tag

    _map_tags(method, params, see)
    return found


class ProxyPlan:
    """A body whose every request is a well-formed call (with an id) of a proxied method and holds no
    settlement tag: it can be answered by the engine alone (:meth:`Dispatcher.proxy_plan`)."""

    __slots__ = ("batch", "calls")

    def __init__(self, batch: bool, calls: list[tuple[Any, str, list]]) -> None:
        self.batch, self.calls = batch, calls

    def reply(self, replies: list[dict]) -> Any:
        out = [proxied_reply(id_, rep) for (id_, _m, _p), rep in zip(self.calls, replies, strict=False)]
        return out if self.batch else out[0]


class Dispatcher:
    """Transport-free JSON-RPC dispatch: local handlers, the sequencer, or the engine proxy.

    Thread-safe and blocking (the sequencer fsyncs, the proxy waits for the engine): a transport calls
    :meth:`handle_body` from a worker thread. ``extra`` handlers (per call) serve methods that belong to one
    connection, e.g. a WebSocket's ``eth_subscribe``/``eth_unsubscribe``.
    """

    def __init__(self, handlers: dict[str, Callable[[list], Any]],
                 proxy_batch: Callable[[list[tuple[str, list]]], list[dict]],
                 submit_raw: Callable[[list[bytes]], list], client_version: str,
                 tag_resolver: Callable[[str], int] | None = None) -> None:
        """``tag_resolver(tag)`` -> L2 block number for ``"safe"`` / ``"finalized"`` (None: the tags are
        passed to the engine unchanged)."""
        self.handlers = handlers
        self.tag_resolver = tag_resolver
        self.proxy_batch = proxy_batch
        self.submit_raw = submit_raw
        self.client_version = client_version

    # -- dispatch --------------------------------------------------------------------------------------------
    def proxy_plan(self, body: bytes | str) -> ProxyPlan | None:
        """The body as a :class:`ProxyPlan` when the engine alone answers it (a transport may then proxy it
        without a dispatch thread, replying with ``plan.reply(engine replies)``); None: dispatch it with
        :meth:`handle_body` (any tx, local method, notification, settlement tag or malformed request)."""
        if (b"sendRaw" if isinstance(body, bytes) else "sendRaw") in body:
            return None  # the common case of the other path, told apart without parsing it twice
        try:
            req = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return None
        reqs = req if isinstance(req, list) else [req]
        if not reqs or len(reqs) > MAX_BATCH:
            return None
        calls: list[tuple[Any, str, list]] = []
        for r in reqs:
            if not isinstance(r, dict) or "id" not in r or r.get("jsonrpc") != "2.0":
                return None
            id_, method, params = r["id"], r.get("method"), r.get("params", [])
            if not isinstance(method, str) or method not in PROXIED:
                return None
            if not _valid_id(id_):
                return None
            params = [] if params is None else params
            if not isinstance(params, list) or (self.tag_resolver is not None and _has_settlement_tag(method, params)):
                return None
            calls.append((id_, method, params))
        return ProxyPlan(isinstance(req, list), calls)

    def handle_body(self, body: bytes | str, extra: dict[str, Callable[[list], Any]] | None = None) -> Any:
        """Decode one JSON-RPC body (a request or a batch) and return the reply (None: notifications only)."""
        try:
            req = json.loads(body)
        except (ValueError, UnicodeDecodeError) as e:
            return _err(None, -32700, f"parse error: {e}")
        if isinstance(req, list):
            if not req:
                return _err(None, -32600, "empty batch")
            if len(req) > MAX_BATCH:
                return _err(None, -32600, f"batch larger than {MAX_BATCH}")
            replies = [r for r, q in zip(self.handle_many(req, extra), req, strict=True) if not _is_notification(q)]
            return replies or None
        reply = self.handle_many([req], extra)[0]
        return None if _is_notification(req) else reply

    def _resolve(self, tag: Any) -> Any:
        if isinstance(tag, str) and tag in SETTLEMENT_TAGS and self.tag_resolver is not None:
            return hex(self.tag_resolver(SETTLEMENT_TAGS[tag]))
        if isinstance(tag, dict) and "blockNumber" in tag:
            return {**tag, "blockNumber": self._resolve(tag["blockNumber"])}
        return tag

    def rewrite_tags(self, method: str, params: list) -> list:
        """Replace settlement tags (safe / finalized) in a proxied call's params by L2 block numbers."""
        if self.tag_resolver is None:
            return params
        return _map_tags(method, params, self._resolve)

    def handle_many(self, reqs: list, extra: dict[str, Callable[[list], Any]] | None = None) -> list[dict]:
        out: list[dict | None] = [None] * len(reqs)
        proxied: list[tuple[int, Any, str, list]] = []
        raws: list[tuple[int, Any, bytes]] = []
        for i, r in enumerate(reqs):
            if not isinstance(r, dict):
                out[i] = _err(None, -32600, "invalid request: not an object")
                continue
            id_ = r.get("id")
            method, params = r.get("method"), r.get("params", [])
            if not _valid_id(id_):
                out[i] = _err(None, -32600, "invalid request: bad id")
                continue
            if r.get("jsonrpc") != "2.0":
                out[i] = _err(id_, -32600, 'invalid request: "jsonrpc" must be "2.0"')
                continue
            if not isinstance(method, str) or not method:
                out[i] = _err(id_, -32600, "invalid request: method must be a non-empty string")
                continue
            if params is None:
                params = []
            if not isinstance(params, (list, dict)):
                out[i] = _err(id_, -32602, "invalid params: must be an array")
                continue
            if isinstance(params, dict):
                out[i] = _err(id_, -32602, "invalid params: by-name params are not supported, use an array")
                continue
            if method == "eth_sendRawTransaction":
                if len(params) != 1 or not isinstance(params[0], str):
                    out[i] = _err(id_, -32602, "invalid params: expected [\"0x<signed tx hex>\"]")
                    continue
                h = params[0][2:] if params[0][:2] in ("0x", "0X") else params[0]
                try:
                    raw = bytes.fromhex(h)
                except ValueError:
                    out[i] = _err(id_, -32602, "invalid params: raw transaction is not hex")
                    continue
                raws.append((i, id_, raw))
            elif (fn := (extra or {}).get(method) or self.handlers.get(method)) is not None:
                try:
                    out[i] = {"jsonrpc": "2.0", "id": id_, "result": fn(params)}
                except InvalidParams as e:
                    out[i] = _err(id_, -32602, f"invalid params: {e}")
                except RpcError as e:
                    out[i] = _err(id_, e.code if e.code is not None else -32000, e.message, e.data)
                except Exception as e:  # noqa: BLE001
                    log.exception("handler %s", method)
                    out[i] = _err(id_, -32603, f"internal error: {type(e).__name__}: {e}")
            elif method == "web3_clientVersion":
                out[i] = {"jsonrpc": "2.0", "id": id_, "result": self.client_version}
            elif method == "web3_sha3":
                out[i] = _sha3(id_, params)
            elif method in ("eth_subscribe", "eth_unsubscribe"):
                out[i] = _err(id_, -32601, NEEDS_WS.format(method=method))
            elif method in REFUSED:
                out[i] = _err(id_, -32000, REFUSED[method])
            elif method in PROXIED:
                try:
                    proxied.append((i, id_, method, self.rewrite_tags(method, params)))
                except Exception as e:  # noqa: BLE001 - e.g. the pipeline is not up yet
                    out[i] = _err(id_, -32603, f"internal error resolving a block tag: {type(e).__name__}: {e}")
            else:
                out[i] = _err(id_, -32601, f"method not found: {method}")
        if raws:
            results = self.submit_raw([raw for _, _, raw in raws])
            for (i, id_, _), res in zip(raws, results, strict=False):
                out[i] = (_err(id_, res.code, str(res)) if isinstance(res, TxRejected)
                          else {"jsonrpc": "2.0", "id": id_, "result": res})
        if proxied:
            try:
                replies = self.proxy_batch([(m, p) for _, _, m, p in proxied])
            except Exception as e:  # noqa: BLE001 - engine down
                replies = engine_unavailable(len(proxied), e)
            for (i, id_, _, _), rep in zip(proxied, replies, strict=False):
                out[i] = proxied_reply(id_, rep)
        return out  # type: ignore[return-value]
