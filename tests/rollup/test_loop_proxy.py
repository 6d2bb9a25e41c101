"""Read-only calls proxied from the RPC server's event loop (harness/rollup/async_proxy.py): which bodies
take that path (Dispatcher.proxy_plan), and that it answers exactly as the dispatch-thread path does,
against a real engine (an anvil over IPC and over HTTP), errors included; a dead engine is an error
reply, never a hang."""

from __future__ import annotations

import asyncio
import json

import pytest

from harness.rollup.async_proxy import AsyncEngineProxy, EngineUnavailable
from harness.rollup.engine import Engine, EngineConfig
from harness.rollup.rpc_dispatch import Dispatcher, engine_unavailable


def _dispatcher(proxy_batch=None, resolver=None) -> Dispatcher:
    return Dispatcher({"zks_local": lambda p: 1}, proxy_batch or (lambda calls: []), lambda raws: [], "v",
                      resolver)


def _req(method, params=None, id_=1) -> dict:
    return {"jsonrpc": "2.0", "id": id_, "method": method, "params": [] if params is None else params}


@pytest.mark.parametrize("body, proxied", [
    (_req("eth_blockNumber"), True),
    ([_req("eth_blockNumber"), _req("eth_getBalance", ["0x" + "11" * 20, "latest"], 2)], True),
    ({"jsonrpc": "2.0", "id": None, "method": "eth_chainId"}, True),  # no params member, id null: a request
    ({"jsonrpc": "2.0", "method": "eth_blockNumber", "params": []}, False),  # a notification
    (_req("eth_getBalance", ["0x" + "11" * 20, "finalized"]), False),  # a settlement tag to resolve
    (_req("eth_getLogs", [{"fromBlock": "safe"}]), False),
    (_req("eth_getBlockByNumber", [{"blockNumber": "l1_committed"}, False]), False),
    (_req("eth_sendRawTransaction", ["0x00"]), False),
    ([_req("eth_blockNumber"), _req("zks_local", [], 2)], False),  # one local method: the whole body
    (_req("eth_blockNumber", "notalist"), False),
    ({"jsonrpc": "1.0", "id": 1, "method": "eth_blockNumber"}, False),
    (_req("eth_blockNumber", id_=True), False),
    (_req(["eth_blockNumber"]), False),
    ([], False),
])
def test_which_bodies_are_proxied_from_the_loop(body, proxied) -> None:
    plan = _dispatcher(resolver=lambda tag: 5).proxy_plan(json.dumps(body).encode())
    assert (plan is not None) is proxied
    if plan is not None:
        assert plan.batch is isinstance(body, list)


def test_settlement_tags_stay_with_the_engine_without_a_resolver() -> None:
    assert _dispatcher().proxy_plan(json.dumps(_req("eth_getBalance", ["0x" + "11" * 20, "safe"]))) is not None


def test_unparseable_bodies_go_the_thread_path() -> None:
    assert _dispatcher().proxy_plan(b"{not json") is None
    assert _dispatcher().proxy_plan(b"\xff\xfe") is None


BODIES = [
    _req("eth_blockNumber"),
    _req("eth_chainId", id_="a"),
    [_req("eth_getBalance", ["0x" + "22" * 20, "latest"], 1), _req("eth_getCode", ["0x" + "22" * 20, "latest"], 2),
     _req("eth_getBlockByNumber", ["0x0", False], 3)],
    _req("eth_getBalance", ["0xnot-an-address", "latest"], 4),  # the engine's own error, passed through
    [_req("eth_getTransactionReceipt", ["0x" + "00" * 32], 5), _req("eth_call", [{"data": "0x"}, "0xffffff"], 6)],
]


@pytest.mark.parametrize("transport", ["ipc", "http"])
def test_loop_path_answers_as_the_thread_path_does(tmp_path, transport) -> None:
    eng = Engine(EngineConfig(transport=transport), tmp_path / "logs", "e", ipc_dir=tmp_path / "eng").start()
    try:
        d = _dispatcher(eng.client().batch_raw)

        async def via_loop(body: dict | list):
            proxy = AsyncEngineProxy(eng.endpoint)
            try:
                plan = d.proxy_plan(json.dumps(body))
                assert plan is not None
                return plan.reply(await proxy.batch_raw([(m, p) for _i, m, p in plan.calls]))
            finally:
                await proxy.close()

        for body in BODIES:
            assert asyncio.run(via_loop(body)) == d.handle_body(json.dumps(body)), body
    finally:
        eng.stop()


def test_a_dead_engine_is_an_error_reply(tmp_path) -> None:
    async def go():
        proxy = AsyncEngineProxy(tmp_path / "nobody.ipc", timeout_s=2)
        with pytest.raises(EngineUnavailable):
            await proxy.batch_raw([("eth_blockNumber", [])])
        return proxy.reconnects

    assert asyncio.run(go()) == 2  # tried twice
    plan = _dispatcher().proxy_plan(json.dumps(_req("eth_blockNumber", id_=9)))
    reply = plan.reply(engine_unavailable(1, EngineUnavailable("gone")))
    assert reply["id"] == 9 and reply["error"]["code"] == -32603 and "L2 engine unavailable" in reply["error"]["message"]
