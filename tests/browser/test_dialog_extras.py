"""The dialog's extra sections in Chromium on the standalone host: Civitai sidecars on the card and in the dialog,
the inspector (norm chart, zero vectors, files with the same vectors, nearest tokens from a local model), a plain
``x.png`` that shadows ``x.preview.png``, and "Use the selected image".

Faked: the WebUI's result gallery. The standalone host has none, so ``test_use_the_selected_gallery_image`` puts
gradio 3.41's gallery markup (``#txt2img_gallery`` with ``button.thumbnail-item.thumbnail-small[.selected] > img``,
as the WebUI 1.10's page has it) into the page; the images in it are real PNGs served by data URLs. Everything else
is real: files written here, the host process, Chromium clicks.
"""

from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path

import pytest
import torch
from factories import vectors, write_a1111_pt, write_safetensors
from PIL import Image
from token_tables import crafted_sd1_checkpoint

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
XSS = "<img src=x onerror=alert(1)>"
DIALOG = "dialog.sdemb-dialog"


def card(page, name: str):
    return page.locator(f'#txt2img_textual_inversion_cards .card[data-name="{name}"]')


def open_dialog(page, name: str):
    card(page, name).hover()
    card(page, name).locator(".sdemb-edit").click()
    dialog = page.locator(DIALOG)
    dialog.locator(".sdemb-inspector h4").wait_for(timeout=20_000)
    return dialog


def png(color: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    return out.getvalue()


def color_of(path: Path) -> tuple[int, int, int]:
    with Image.open(path) as picture:
        return picture.convert("RGB").getpixel((0, 0))


def build(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_a1111_pt(folder / "pony-style.pt", vectors(2, seed=1))
    (folder / "pony-style.civitai.info").write_text(json.dumps({
        "name": "v2", "baseModel": "Pony", "trainedWords": ["ponystyle", XSS], "model": {"name": f"Pony style {XSS}"},
        "description": f"<p>Soft <b>pastel</b> look</p><script>alert(2)</script>{XSS}",
        "images": [{"url": "https://image.civitai.com/x/1.jpeg", "type": "image"}]}))
    (folder / "pony-style_0.jpg").write_bytes(_jpeg((20, 120, 220)))
    twin = vectors(4, seed=2)
    twin[2] = 0
    write_a1111_pt(folder / "twin.pt", twin)
    write_safetensors(folder / "copies" / "twin-copy.safetensors", {"emb_params": twin.half()})
    write_a1111_pt(folder / "shadow.pt", vectors(1, seed=3))
    (folder / "shadow.png").write_bytes(png((250, 0, 0)))
    write_a1111_pt(folder / "plain.pt", vectors(1, seed=4))
    return folder


def _jpeg(color: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (30, 30), color).save(out, format="JPEG")
    return out.getvalue()


@pytest.fixture
def tab(shared_host, open_page):
    host = shared_host(build)  # a new one after a test that changed its files
    page, watch = open_page(host)
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text) if message.type == "error" else None)
    yield page, host
    assert watch.errors == [], watch.errors
    assert watch.dialogs == [], watch.dialogs  # no alert() from the sidecar's markup
    assert console == [], console  # every request answered (a refused upload logs its reason here)


def test_civitai_sidecar_shows_base_model_description_and_first_image(tab):
    page, _ = tab
    pony = card(page, "pony-style")
    assert pony.locator(".sdemb-base").inner_text() == "Pony"
    assert "Soft" in pony.locator(".description").inner_text() and pony.locator(".description img").count() == 0
    assert "pony-style_0.jpg" in pony.locator("img.preview").get_attribute("src")
    page.wait_for_function("""() => { const i = document.querySelector('.card[data-name="pony-style"] img.preview');
        return i && i.complete && i.naturalWidth === 30; }""", timeout=10_000)
    dialog = open_dialog(page, "pony-style")
    civitai = dialog.locator(".sdemb-civitai")
    assert "Pony" in civitai.inner_text() and "pony-style.civitai.info" in civitai.inner_text()
    assert XSS in civitai.inner_text() and civitai.locator("img").count() == 0  # shown as text, never markup
    assert dialog.locator("textarea[name=description]").input_value() == ""  # Save never copies it into x.json
    assert "Soft pastel look" in dialog.locator("textarea[name=description]").get_attribute("placeholder")
    assert "Civitai Browser+" in dialog.locator(".sdemb-preview-extras").inner_text()
    page.screenshot(path=str(_artifact("dialog-civitai.png")), full_page=True)


def test_inspector_charts_norms_flags_the_zero_vector_and_names_the_copy(tab):
    page, _ = tab
    dialog = open_dialog(page, "twin")
    bars = dialog.locator(".sdemb-chart rect")
    assert bars.count() == 4
    assert dialog.locator(".sdemb-chart rect.sdemb-bar-zero").count() == 1
    assert "vector 3: all zeros" in dialog.locator(".sdemb-chart rect.sdemb-bar-zero title").text_content()
    assert "1 zero" in dialog.locator(".sdemb-chart figcaption").inner_text()
    assert "copies/twin-copy.safetensors" in dialog.locator(".sdemb-twins").inner_text()
    assert "--model" in dialog.locator(".sdemb-nearest").inner_text()  # this host has no text encoder
    assert dialog.locator(".sdemb-use-gallery").count() == 0  # no gallery on the standalone host
    page.screenshot(path=str(_artifact("dialog-inspector.png")), full_page=True)


def test_a_shadowing_png_is_replaced_when_asked(tab, tmp_path):
    page, host = tab
    upload = tmp_path / "green.png"
    upload.write_bytes(png((0, 200, 0)))
    dialog = open_dialog(page, "shadow")
    notice = dialog.locator(".sdemb-preview-extras")
    assert "shadow.png takes precedence over shadow.preview.png" in notice.inner_text()
    assert dialog.locator("input[name=replace_shown]").is_checked()
    dialog.locator("input[name=preview]").set_input_files(str(upload))
    dialog.locator(".sdemb-save").click()
    page.wait_for_function("() => !document.querySelector('dialog.sdemb-dialog')")
    page.wait_for_function(f"() => {_green_preview('shadow')}", timeout=10_000)
    assert color_of(host.folder / "shadow.png") == (0, 200, 0)
    assert not (host.folder / "shadow.preview.png").exists()


def test_unticked_the_upload_goes_to_the_preview_file_and_the_png_stays(tab, tmp_path):
    page, host = tab
    upload = tmp_path / "green.png"
    upload.write_bytes(png((0, 200, 0)))
    dialog = open_dialog(page, "shadow")
    dialog.locator("input[name=replace_shown]").uncheck()
    dialog.locator("input[name=preview]").set_input_files(str(upload))
    dialog.locator(".sdemb-save").click()
    page.wait_for_function("() => !document.querySelector('dialog.sdemb-dialog')")
    for _ in range(100):  # the card keeps showing shadow.png, so only the file tells that the upload landed
        if (host.folder / "shadow.preview.png").exists():
            break
        page.wait_for_timeout(100)
    assert color_of(host.folder / "shadow.preview.png") == (0, 200, 0)
    assert color_of(host.folder / "shadow.png") == (250, 0, 0)


GALLERY = """(images) => {
    const gallery = document.createElement('div');
    gallery.id = 'txt2img_gallery';
    gallery.innerHTML = images.map((src, i) => '<button class="thumbnail-item thumbnail-small' +
        (i === 1 ? ' selected' : '') + '"><img src="' + src + '"></button>').join('');
    document.body.appendChild(gallery);
}"""


def test_use_the_selected_gallery_image(tab):
    """The second of two gallery images is selected; it becomes ``plain.preview.png`` (re-encoded) and the card's
    preview, without closing the dialog."""
    page, host = tab
    images = [f"data:image/png;base64,{base64.b64encode(png(color, (48, 32))).decode()}"
              for color in ((250, 0, 0), (0, 0, 250))]
    page.evaluate(GALLERY, images)
    dialog = open_dialog(page, "plain")
    dialog.locator(".sdemb-use-gallery").click()
    status = dialog.locator(".sdemb-preview-status")
    page.wait_for_function("() => /Saved as/.test(document.querySelector('.sdemb-preview-status').textContent)",
                           timeout=10_000)
    assert "plain.preview.png" in status.inner_text()
    assert color_of(host.folder / "plain.preview.png") == (0, 0, 250)
    with Image.open(host.folder / "plain.preview.png") as written:
        assert written.format == "PNG" and written.size == (48, 32)
    assert card(page, "plain").locator("img.preview").count() == 1
    page.screenshot(path=str(_artifact("dialog-gallery.png")), full_page=True)


def test_nearest_tokens_from_a_local_model(tmp_path, host_factory, open_page):
    """``serve --model``: a real single-file checkpoint whose token rows for "cat" and "dog" are this embedding's
    two vectors, so those are the nearest tokens (cosine 1.00); the first lookup loads the text encoder. With a
    Civitai sidecar and a float16 copy under another name, this is the README's dialog picture (written to
    docs/screenshots/ with SDEMB_SCREENSHOTS=docs)."""
    cat, dog = vectors(1, seed=21)[0], vectors(1, seed=22)[0]
    folder = tmp_path / "embeddings"
    write_a1111_pt(folder / "petmix.pt", torch.stack([cat, dog, cat * 0.6 + dog * 0.4]))
    write_safetensors(folder / "old" / "petmix_v1.safetensors",
                      {"emb_params": torch.stack([cat, dog, cat * 0.6 + dog * 0.4]).half()})
    (folder / "petmix.civitai.info").write_text(json.dumps({
        "name": "v2.0", "baseModel": "SD 1.5", "trainedWords": ["petmix"], "model": {"name": "Pet mix"},
        "description": "<p>Cats and dogs in one embedding.</p>", "images": [{"url": "https://x/1.jpeg"}] * 4}))
    checkpoint = crafted_sd1_checkpoint(tmp_path / "tiny-sd1.safetensors", {"cat": cat, "dog": dog})
    host = host_factory(folder, extra=("--model", str(checkpoint)))
    page, watch = open_page(host)
    dialog = open_dialog(page, "petmix")
    dialog.locator(".sdemb-find-tokens").click()
    rows = dialog.locator(".sdemb-tokens tr")
    rows.first.wait_for(timeout=120_000)
    assert rows.count() == 3
    assert rows.nth(0).locator("code").first.inner_text() == "cat"
    assert rows.nth(1).locator("code").first.inner_text() == "dog"
    assert rows.nth(0).locator("small").first.inner_text() == "1.00"
    assert "old/petmix_v1.safetensors" in dialog.locator(".sdemb-twins").inner_text()
    for out in _screenshot_dirs():
        page.screenshot(path=str(out / "dialog.png"), clip=dialog.bounding_box())
    assert watch.errors == []


def _screenshot_dirs() -> list[Path]:
    dirs = [ROOT / "test-artifacts"] + ([ROOT / "docs" / "screenshots"]
                                        if os.environ.get("SDEMB_SCREENSHOTS") == "docs" else [])
    for folder in dirs:
        folder.mkdir(parents=True, exist_ok=True)
    return dirs


def _green_preview(name: str) -> str:
    return f"""(() => {{ const i = document.querySelector('.card[data-name="{name}"] img.preview');
        if (!i || !i.complete || !i.naturalWidth) return false;
        const c = document.createElement('canvas'); c.width = 1; c.height = 1;
        const x = c.getContext('2d'); x.drawImage(i, 0, 0, 1, 1);
        return x.getImageData(0, 0, 1, 1).data[1] > 150; }})()"""


def _artifact(name: str) -> Path:
    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    return ROOT / "test-artifacts" / name
