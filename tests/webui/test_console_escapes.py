"""The WebUI's "print at load" line lists embedding names, which come from file names: escaped like every log line
(``formats.logs``). Fakes: the WebUI's ``modules`` (conftest); the files are real."""

from __future__ import annotations

from factories import vectors, write_a1111_pt


def test_print_at_load_names_are_escaped(webui, capsys):
    write_a1111_pt(webui.folder / "b\x1b]0;title\x07\x1b[2J.pt", vectors(1))
    write_a1111_pt(webui.folder / "c\nTextual inversion embeddings loaded(99): all.pt", vectors(1))
    webui.load_model(768)
    webui.opts.textual_inversion_print_at_load = True
    webui.make_db().load_textual_inversion_embeddings()
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert out.count("\n") == 1 and out.startswith("Textual inversion embeddings loaded(2): ")
    assert "b\\x1b]0;title\\x07\\x1b[2J" in out and "c\\nTextual inversion" in out
