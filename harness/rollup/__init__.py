"""The embedded ZK rollup node (sequencer, batcher, prover pipeline, finality API) and its L1/ZK parts.

Node side: node.py (the service), __main__.py (``python -m harness.rollup``), service.py (start it as a
child process), sequencer.py, store.py (WAL + SQLite), batcher.py (the pipeline: records, lifecycle, committer, executor),
sealer.py (its seal stage), prover_stages.py (re-execution, proof, verification), pipeline_common.py, confirm.py
(L1 confirmations, reorgs), diff_tracer.py (per-block state diffs), da_choice.py, merkle.py, state_diff.py,
compress.py, finality.py (zks_* views), rpc_server.py, engine.py (anvil engines, reached over IPC), config.py.
ZK/L1 side: l1.py, zk/, contracts/, solc.py.
"""
