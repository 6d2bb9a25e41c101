"""The embedded ZK rollup node (sequencer, batcher, prover pipeline, finality API) and its L1/ZK parts.

Node side: node.py (the service), __main__.py (``python -m harness.rollup``), service.py (start it as a
child process), sequencer.py, store.py (WAL + SQLite), batcher.py (pipeline), merkle.py, state_diff.py,
compress.py, finality.py (zks_* views), rpc_server.py, engine.py (anvil engines, reached over IPC), config.py.
ZK/L1 side: l1.py, zk/, contracts/, solc.py.
"""
