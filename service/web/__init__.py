"""The web page served at ``/``: static assets in ``static/`` (no build step; Plotly's
basic bundle is vendored under ``static/vendor/``, MIT licence beside it)."""
