"""Small helpers for reading outcomes in tests."""

from __future__ import annotations

from bridge.load import Loaded, assign_keys, load_document


def lines(out: dict) -> set[str]:
    """Lines as '20560-59 x1' strings."""
    return {ln["code"] + "".join("-" + m for m in ln["modifiers"]) + f" x{ln['units']}" for ln in out["lines"]}


def finding_ids(out: dict) -> set[str]:
    return {f["id"] for f in out["findings"]}


def rejected(out: dict) -> dict[str, set[str]]:
    return {b["code"]: {d["id"] for d in b["reason_details"]} for b in out.get("billed", []) if b["verdict"] == "reject"}


def inj(muscle: str, side: str | None = None, injectate=("lidocaine 1%",)) -> dict:
    proc = {"muscle": muscle, "injectate": list(injectate)}
    if side:
        proc["side"] = side
    return proc


def dry(muscle: str, side: str | None = None) -> dict:
    return inj(muscle, side, ())


def encounters(kb, *docs: dict):
    """Validated encounters from case-format dicts (date defaults to 2025-06-02)."""
    out = Loaded()
    for i, doc in enumerate(docs):
        load_document({"date": "2025-06-02", **doc}, "<test>", None, f"t{i}", kb.profiles(), out)
    assert not out.problems, [str(p) for p in out.problems]
    assign_keys(out.encounters)
    return out.encounters
