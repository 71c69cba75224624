"""What a run's shards were computed with (`OUT.shards/manifest.json`), and the comparison that lets a
resume reuse them or refuses it naming each setting that differs."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from .. import __version__
from ..serving import SERVER_EXECUTION_FIELDS
from .errors import SettingsMismatch

MANIFEST = "manifest.json"
# 2: a shard is finished only with its record (records.py)
MANIFEST_FORMAT = 2
# RAPConfig fields that choose where and in which groups rows run, not what is computed: a resume may
# change them (a smaller batch after an out-of-memory error, another machine).
EXECUTION_FIELDS = ("device", "batch_size", *SERVER_EXECUTION_FIELDS)


def build_manifest(scorer, rows: dict[str, Any], shard_rows: int) -> dict[str, Any]:
    """The manifest of `scorer` over `rows` ({"count", "rap_id_sha256"}) in shards of `shard_rows`."""
    from ..rollouts.sampling import SAMPLER_NAME  # (imports torch: not needed to read a command's flags)

    config = scorer.config.to_dict()
    return {
        "format": MANIFEST_FORMAT,
        "rap_hf": __version__,
        "scorer": type(scorer).__name__,
        "sampler": SAMPLER_NAME,
        "model": scorer.model_ref,
        "model_identity": scorer.scoring_model.identity(),
        "model_fingerprint": settings_fingerprint(scorer, rows["rap_id_sha256"]),
        "config": {k: v for k, v in config.items() if k not in EXECUTION_FIELDS},
        "rows": rows,
        "shard_rows": shard_rows,
    }


def settings_fingerprint(scorer, rows_digest: str) -> str:
    """The scorer's fingerprint (model files or Hub revision, config, version) over these rows,
    blind to the execution-only config fields.

    The rows enter by their ids: a dataset's own fingerprint is not stable across processes when the
    rows were converted on the fly, and every rank must agree.
    """
    return scorer.fingerprint(SimpleNamespace(_fingerprint=rows_digest), ignore=EXECUTION_FIELDS)


def compare_manifests(stored: dict[str, Any], current: dict[str, Any], where: Path) -> None:
    """Raise `SettingsMismatch` naming each setting that differs between a stored and this run's manifest."""
    differences = []
    if stored.get("rows") != current["rows"]:
        then, now = stored.get("rows", {}).get("count"), current["rows"]["count"]
        differences.append(f"input rows: {then} then, {now} now" if then != now
                           else f"input rows: the same count ({now}) but other rap_ids or another order")
    if stored.get("shard_rows") != current["shard_rows"]:
        differences.append(f"--shard-rows: {stored.get('shard_rows')} then, {current['shard_rows']} now")
    for name in sorted(set(stored.get("config", {})) | set(current["config"])):
        then, now = stored.get("config", {}).get(name), current["config"].get(name)
        if then != now:
            differences.append(f"{name}: {then!r} then, {now!r} now")
    for name, what in (("scorer", "scorer"), ("sampler", "sampler"), ("rap_hf", "rap-hf version")):
        if stored.get(name) != current[name]:
            differences.append(f"{what}: {stored.get(name)} then, {current[name]} now")
    then, now = stored.get("model_identity"), current.get("model_identity")
    if then != now and str(now).startswith("server:"):  # the servers serve other weights under the name
        differences.append(f"the served model: {_served(then)} then, {_served(now)} now")
    # The model is compared by its files (or Hub revision), so a moved or re-linked folder still resumes.
    elif stored.get("model_fingerprint") != current["model_fingerprint"]:
        then, now = stored.get("model"), current["model"]
        if then != now:
            differences.append(f"model: {then} then, {now} now")
        elif not differences:  # the fingerprint covers the config too: only then is it the files
            differences.append(f"model: the files (or Hub revision) of {now} changed")
    if differences:
        raise SettingsMismatch(
            f"{where} holds rows scored with other settings than this run's ({'; '.join(differences)}). Re-run "
            "with the original settings to resume, choose another --output, or pass --overwrite to start afresh."
        )


def _served(identity: str | None) -> str:
    """A served model's identity as /v1/models described it (`rap_hf.rollouts.server.probe`)."""
    return "none recorded" if not identity else identity.removeprefix("server:")
