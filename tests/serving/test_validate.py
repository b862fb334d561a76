"""Version checks without a server: the child process that loads a version, and what the server
sets instead of a manifest's path-like parameters."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lmrec.errors import ArtifactError
from lmrec.serving.validate import LoadSettings, check_in_child, server_params


def fake_python(tmp_path: Path, body: str) -> str:
    script = tmp_path / "python"
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(0o755)
    return str(script)


def test_a_loader_that_crashes_or_hangs_is_a_refused_version(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "executable", fake_python(tmp_path, "kill -SEGV $$"))
    with pytest.raises(ArtifactError, match="killed the checking process \\(SIGSEGV\\)"):
        check_in_child(tmp_path, LoadSettings())
    monkeypatch.setattr(sys, "executable", fake_python(tmp_path, "sleep 30"))
    with pytest.raises(ArtifactError, match="longer than 0.5 s"):
        check_in_child(tmp_path, LoadSettings(timeout=0.5))
    monkeypatch.setattr(sys, "executable", fake_python(tmp_path, 'echo \'{"ok": false, "error": "bad weights"}\'; exit 1'))
    with pytest.raises(ArtifactError, match="^bad weights$"):
        check_in_child(tmp_path, LoadSettings())


def test_the_server_sets_path_like_parameters(tmp_path):
    manifest = {"params": {"cache_dir": "/anywhere", "encoder": {"model": "minilm", "pooling": "mean"},
                           "config": {"run_dir": "/var/log/x", "epochs": 3}}}
    params = server_params(manifest, tmp_path, LoadSettings(cache_dir=None))
    assert params == {"cache_dir": None, "encoder": {"model": "minilm", "pooling": "mean"},
                      "config": {"run_dir": None, "epochs": 3}}
    mapped = LoadSettings(encoders={"pretuned": "/srv/encoders/pretuned"})
    for given in ("/home/alice/runs/pretuned", "pretuned"):
        params = server_params({"params": {"encoder": given}}, tmp_path, mapped)
        assert params["encoder"] == "/srv/encoders/pretuned"
    for given in ("/etc", "../../x", "some-org/some-hub-model"):
        with pytest.raises(ArtifactError, match="params.encoder.model is .* neither a registered encoder"):
            server_params({"params": {"encoder": {"model": given}}}, tmp_path, LoadSettings())
    with pytest.raises(ArtifactError, match="'params' must be an object"):
        server_params({"params": [1]}, tmp_path, LoadSettings())


def test_a_blend_member_gets_the_server_policy_too(tiny_model, tiny_data, tmp_path):
    """The server's rules reach the models saved inside a blend: a member's manifest names neither
    the encoder folder nor the embedding cache the server uses."""
    import json

    from lmrec.models import EASE, Blend, Recommender
    from lmrec.serving.validate import load_version

    blend = Blend(members=[Recommender.load(tiny_model), EASE(lam=1.0)], weights=[0.5, 0.5]).fit(tiny_data)
    blend.save(tmp_path / "b")
    member = tmp_path / "b" / "member-0" / "manifest.json"
    manifest = json.loads(member.read_text())
    manifest["params"]["cache_dir"] = str(tmp_path / "outside-cache")
    member.write_text(json.dumps(manifest))
    loaded = load_version(tmp_path / "b", LoadSettings(cache_dir=None))
    assert loaded.members_[0].cache_dir is None
    manifest["params"]["encoder"] = "/etc"
    member.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="member-0/manifest.json: params.encoder.model is '/etc'"):
        load_version(tmp_path / "b", LoadSettings())
