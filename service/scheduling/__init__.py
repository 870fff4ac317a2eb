"""Fair-share ordering of claims across users (``fair_share``)."""
