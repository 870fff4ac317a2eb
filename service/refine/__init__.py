"""Adaptive phase diagrams: find where a label flips over a 2-D or 3-D parameter box.

- ``lattice``: lattice points ↔ parameter values (linear or log axes), exact and stable;
- ``cells``: the subdivision algorithm (which cells to split next), pure;
- ``labels``: a point's label from its trials (majority over seeds, threshold buckets);
- ``boundary``: the boundary cells and the label map they imply, pure;
- ``offline``: the same rounds over a label function (benchmark, tests);
- ``validate``: the 422 checks of a refine spec, with field paths;
- ``controller``: the dispatcher's job that turns finished rounds into new trials;
- ``report``: ``GET /v1/sweeps/{id}/boundary``.
"""
