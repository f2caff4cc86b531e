"""``finegrain explain``: Grad-CAM maps of what made two images similar or a score high."""

from __future__ import annotations

import json

from finegrain.cli.registry import arg, command


@command("explain", "heat maps of the regions that made two images similar (or a score high)",
         arg("run", help="run folder (or model file)"),
         arg("image", help="image to explain"),
         arg("image2", nargs="?", help="second image (embedding models; or use --index)"),
         arg("--out", required=True, help="PNG file to write"),
         arg("--index", help="index folder made by 'finegrain index': compare IMAGE with its top match"),
         arg("--alpha", type=float, default=0.5, help="heat-map opacity in [0, 1] (default: 0.5)"),
         description="Grad-CAM on the backbone's last feature map. An embedding model explains a pair (IMAGE "
                     "IMAGE2, or IMAGE and its top match in --index, searched as the index searches); a scoring "
                     "model explains one image's score.")
def explain_command(run: str, image: str, image2: str | None = None, out: str = "explain.png",
                    index: str | None = None, alpha: float = 0.5) -> int:
    from finegrain.explain.explain import explain

    print(json.dumps(explain(run, image, image2, out=out, index=index, alpha=alpha), indent=2))
    return 0
