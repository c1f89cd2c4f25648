"""WebUI entry point of the sd-embeddings extension: wires ``sd_embeddings.webui`` into AUTOMATIC1111.

Everything lives in ``sd_embeddings/webui/``; this file only registers it and exposes the always-visible
script whose ``process``/``process_batch``/``postprocess_batch`` hooks run around each generation and batch.
"""

from modules import scripts

from sd_embeddings.webui import entry

entry.register()


class TextualInversionHooks(scripts.Script):
    def title(self):
        return "Textual Inversion (sd-embeddings)"

    def show(self, is_img2img):
        return scripts.AlwaysVisible

    def process(self, p, *args):
        entry.before_generation(p)

    def process_batch(self, p, *args, **kwargs):
        entry.before_batch(p)

    def postprocess_batch(self, p, *args, **kwargs):
        entry.after_batch(p)
