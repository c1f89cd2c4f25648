"""The command line and the two new things: ``scan`` lists groups, ``encode --explicit-only`` (the bare-keywords
setting off). Real files in tmp_path, the real CLIP tokenizer, ``main()`` as a user runs it."""

from __future__ import annotations

import json

from factories import sdxl_vectors, vectors, write_safetensors

from sd_embeddings.__main__ import main


def folder_with_groups(tmp_path):
    root = tmp_path / "emb"
    write_safetensors(root / "EasyNegative.safetensors", {"emb_params": vectors(2)})
    write_safetensors(root / "xl-detail.safetensors", sdxl_vectors(1))
    (root / "Negatives.tigroup.json").write_text(json.dumps({"sd-embeddings group": 1, "target": "negative",
        "members": [{"keyword": "EasyNegative"}, {"keyword": "gone", "weight": 0.8}, {"keyword": "xl-detail"}]}),
        encoding="utf-8")
    (root / "sub").mkdir()
    (root / "sub" / "Broken\x1b[2J.tigroup.json").write_text("{", encoding="utf-8")
    return root


def test_scan_lists_groups_with_what_stays_text(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert main(["scan", str(folder_with_groups(tmp_path)), "--family", "sd1"]) == 0
    out = capsys.readouterr().out
    assert "Groups (2):\n" in out
    assert "  Negatives (negative): EasyNegative, (gone:0.8), xl-detail; missing: gone; not usable: xl-detail\n" in out
    assert "  sub/Broken\\x1b[2J.tigroup.json: cannot be used: " in out  # a hostile name cannot drive the terminal
    assert "\x1b" not in out


def test_encode_explicit_only(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    root = folder_with_groups(tmp_path)
    assert main(["encode", "EasyNegative, (embedding:EasyNegative:1.3)", "--folder", str(root), "--json",
                 "--explicit-only"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [(e["keyword"], e["weight"]) for e in report["embeddings"]] == [("EasyNegative", 1.3)]
    assert [w["kind"] for w in report["warnings"]] == ["explicit-only"]
    assert main(["encode", "EasyNegative", "--folder", str(root), "--json"]) == 0
    assert [e["keyword"] for e in json.loads(capsys.readouterr().out)["embeddings"]] == ["EasyNegative"]
