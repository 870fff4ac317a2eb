"""CI benchmark runs: suites (``suites``), pure measurement and verdict functions
(``measures``, ``policies``), and the use cases the routes call (``runs``)."""
