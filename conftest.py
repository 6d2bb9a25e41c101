"""Thin root conftest: registers the fixtures/ plugins (one concern per module)."""

pytest_plugins = [
    "fixtures.options",
    "fixtures.isolation",
    "fixtures.claims",
    "fixtures.reporting",
    "fixtures.hypothesis_profiles",
    "fixtures.ml",
    "fixtures.ml_sweeps",
    "fixtures.rollup",
    "fixtures.chain",
    "fixtures.targets",
]
