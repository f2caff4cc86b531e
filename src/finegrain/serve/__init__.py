"""``finegrain serve``: collections of labelled photos behind an HTTP API and a web page.

The service is split the litgpt way: ``uploads`` decodes and checks what a request carries, ``engine`` runs
the models (one compute thread, embeddings batched across concurrent requests), ``collections`` keeps the
galleries on disk (each a ``GalleryIndex`` bound to the model), and ``app`` wires routes, limits and errors.
"""

from finegrain.serve.settings import ServeSettings

__all__ = ["ServeSettings"]
