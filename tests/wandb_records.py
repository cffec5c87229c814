"""Read back an offline W&B run (`run-*.wandb`) so tests can check what was logged.

wandb 0.2x+ dropped its Python reader for this file (the writer is the Go core), so this decodes the format
directly: a 7-byte header, then LevelDB-log records (4-byte checksum, 2-byte length, 1-byte type) in 32 KiB
blocks, each payload a `wandb_internal_pb2.Record`.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from wandb.proto import wandb_internal_pb2 as pb

HEADER_LEN = 7
BLOCK_LEN = 32768
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def _payloads(data: bytes):
    pos, pending = HEADER_LEN, b""
    while pos + 7 <= len(data):
        space = BLOCK_LEN - pos % BLOCK_LEN
        if space < 7:
            pos += space
            continue
        _checksum, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == FULL:
            yield chunk
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind == LAST:
            yield pending + chunk
            pending = b""
        elif kind == 0 and length == 0:
            break


def read_run(path: Path) -> dict:
    """{'config': {key: value}, 'history_keys': set, 'summary': {key: value}, 'group', 'job_type', 'exit_code'}
    of one offline run file (exit_code is None when the run was never finished)."""
    config, history_keys, summary = {}, set(), {}
    run_info = {"group": None, "job_type": None, "exit_code": None}
    for payload in _payloads(Path(path).read_bytes()):
        record = pb.Record()
        record.ParseFromString(payload)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run_info.update(group=record.run.run_group, job_type=record.run.job_type)
            config.update({i.key: json.loads(i.value_json) for i in record.run.config.update})
        elif kind == "config":
            config.update({i.key: json.loads(i.value_json) for i in record.config.update})
        elif kind == "history":
            history_keys.update(i.key or "/".join(i.nested_key) for i in record.history.item)
        elif kind == "summary":
            summary.update({(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in record.summary.update})
        elif kind == "exit":
            run_info["exit_code"] = record.exit.exit_code
    return {"config": config, "history_keys": history_keys, "summary": summary, **run_info}
