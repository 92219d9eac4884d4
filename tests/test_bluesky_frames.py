"""Builds firehose frames and Jetstream messages the way the servers do, for the Bluesky tests
(and the benchmark corpus later): a DAG-CBOR header and body, with the records in a CAR."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import libipld


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def cid_of(block: bytes) -> bytes:
    """CIDv1, dag-cbor, sha2-256: the binary form libipld decodes links to."""
    return b"\x01\x71\x12\x20" + hashlib.sha256(block).digest()


def car(blocks: list[bytes]) -> bytes:
    """A CAR v1 holding `blocks`, rooted at the first one (a commit in real frames)."""
    cids = [cid_of(b) for b in blocks]
    root = cids[0]
    link = b"\xd8\x2a\x58" + bytes([len(root) + 1]) + b"\x00" + root  # tag 42
    header = b"\xa2\x65roots\x81" + link + b"\x67version\x01"
    out = _varint(len(header)) + header
    for cid, block in zip(cids, blocks, strict=True):
        out += _varint(len(cid) + len(block)) + cid + block
    return out


def commit_frame(repo: str, ops: list[tuple[str, str, dict[str, Any] | None]], seq: int = 1) -> bytes:
    """A `#commit` frame: ops are (action, "collection/rkey", record or None)."""
    blocks = [libipld.encode_dag_cbor({"did": repo, "version": 3})]
    body_ops = []
    for action, path, record in ops:
        cid = None
        if record is not None:
            block = libipld.encode_dag_cbor(record)
            blocks.append(block)
            cid = cid_of(block)
        body_ops.append({"action": action, "path": path, "cid": cid})
    header = libipld.encode_dag_cbor({"op": 1, "t": "#commit"})
    body = libipld.encode_dag_cbor({
        "ops": body_ops, "rev": "3n3f2syutkk2v", "seq": seq, "repo": repo,
        "time": "2026-01-01T00:00:00.000Z", "blobs": [], "blocks": car(blocks),
        "commit": cid_of(blocks[0]), "rebase": False, "tooBig": False})
    return header + body


def jetstream_message(did: str, action: str, path: str, record: dict[str, Any] | None,
                      time_us: int = 1_725_911_162_329_308, *, ascii_only: bool = False,
                      cid: str = "bafyreidwaivazkwu67xztlmuobx35hs2lnfh3kolmgfmucldvhd3sgzcqi") -> bytes:
    """A Jetstream commit event in the documented JSON format."""
    collection, _, rkey = path.partition("/")
    commit: dict[str, Any] = {"rev": "3l3qo2vutsw2b", "operation": action, "collection": collection,
                              "rkey": rkey}
    if record is not None:
        commit |= {"record": record, "cid": cid}
    event = {"did": did, "time_us": time_us, "kind": "commit", "commit": commit}
    return json.dumps(event, ensure_ascii=ascii_only).encode()
